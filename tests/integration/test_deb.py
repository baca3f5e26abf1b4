"""The Debian package: `make deb` builds it, apt-get installs it where debian/ says,
lintian finds no error, and a Kafka record reaches a Socket.IO client through an Apache
and a worker that use only the installed files (module, snippets, binary, configuration
format, user and group), the worker started as its systemd unit starts it.

Builds the package once for this file (a few minutes on 2 cores), installs it, and
purges it at the end (the system user psdm-socket stays, as Debian keeps system users).
PSDM_DEB_DIR=DIR uses the packages `make deb` already left in DIR instead of building.
"""
import glob
import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

from harness import REPO, Harness, Worker

PKG = "psdm-socket"
USER = GROUP = "psdm-socket"
WORKER = "/usr/sbin/psdm_socketd"
MODULE = "/usr/lib/apache2/modules/mod_psdm_socket.so"
MODS = "/etc/apache2/mods-available"
LOCATION = "/etc/apache2/conf-available/psdm_socket-location.conf"
CONF = "/etc/psdm_socket/psdm_socketd.conf"
UNIT = "/lib/systemd/system/psdm_socketd.service"
TEMPLATE = "/lib/systemd/system/psdm_socketd@.service"  # N workers (issue 13)
DOC = "/usr/share/doc/psdm-socket"
MAN = ["/usr/share/man/man8/psdm_socketd.8.gz", "/usr/share/man/man5/psdm_socketd.conf.5.gz",
       "/usr/share/man/man8/mod_psdm_socket.8.gz"]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="installs a Debian package: needs root (CI runs make test as root)"),
    pytest.mark.skipif(shutil.which("dpkg-buildpackage") is None,
                       reason="dpkg-buildpackage missing: install dpkg-dev debhelper fakeroot lintian "
                              "(scripts/deps.sh test)"),
]


def project_version():
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        return re.search(r"^project\(psdm_socket VERSION ([0-9.]+)", f.read(), re.M).group(1)


def run(argv, timeout=120, **kw):
    """Runs argv; fails the test with its output if it exits non-zero."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


# ------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def debs():
    """The directory holding psdm-socket_<version>_<arch>.deb, its -dbgsym and .changes."""
    given = os.environ.get("PSDM_DEB_DIR")
    if given:
        yield given
        return
    out = tempfile.mkdtemp(prefix="psdm-deb-")
    # Not the jobserver of a make that runs us (its fds are not ours); the unit tests
    # already ran in this make test: nocheck.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["DEB_BUILD_OPTIONS"] = "nocheck"
    try:
        r = subprocess.run(["make", "-C", REPO, "deb", f"DEB_BUILD={out}"], capture_output=True, text=True,
                           timeout=1800, env=env)
        assert r.returncode == 0, f"make deb failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        yield out
    finally:
        shutil.rmtree(out, ignore_errors=True)


def deb_of(debs, name):
    found = glob.glob(os.path.join(debs, f"{name}_{project_version()}_*.deb"))
    assert len(found) == 1, f"expected one {name}_{project_version()}_*.deb in {debs}, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def installed(debs):
    """Installs the package with apt-get (no Recommends: apache2 would bring a system
    Apache the tests do not use), and purges it at the end unless it was installed before."""
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PKG], capture_output=True, text=True).stdout
    was_installed = status == "install ok installed"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        run(["apt-get", "install", "-y", "--no-install-recommends", deb_of(debs, PKG)], timeout=600, env=env)
        yield {"was_installed": was_installed}
    finally:
        if not was_installed:
            subprocess.run(["apt-get", "purge", "-y", PKG], capture_output=True, timeout=600, env=env)


# ------------------------------------------------------------------- the package

def test_version_of_the_package_is_the_projects(debs):
    r = run(["dpkg-deb", "-f", deb_of(debs, PKG), "Version", "Package"])
    assert f"Version: {project_version()}" in r.stdout and f"Package: {PKG}" in r.stdout


def test_lintian_reports_no_error(debs):
    changes = glob.glob(os.path.join(debs, f"{PKG}_{project_version()}_*.changes"))
    assert len(changes) == 1, changes
    r = subprocess.run(["lintian", "--display-info", changes[0]], capture_output=True, text=True, timeout=600)
    print(r.stdout)  # the warnings left, in the test's output
    errors = [line for line in r.stdout.splitlines() if line.startswith("E:")]
    assert not errors, "lintian errors:\n" + "\n".join(errors)


def test_debug_info_is_in_the_dbgsym_package(debs):
    listing = run(["dpkg-deb", "-c", deb_of(debs, PKG + "-dbgsym")]).stdout
    assert len(re.findall(r"usr/lib/debug/\.build-id/\S+\.debug", listing)) >= 2  # worker and module


def test_installed_files_are_where_debian_puts_them(installed):
    for path in [MODULE, f"{MODS}/psdm_socket.load", f"{MODS}/psdm_socket.conf", LOCATION, WORKER, CONF, UNIT,
                 TEMPLATE, "/lib/systemd/system/psdm_socketd.socket", "/lib/systemd/system/psdm_socketd@.socket",
                 "/usr/share/psdm_socket/js/websocket_client.js", f"{DOC}/README.Debian", f"{DOC}/copyright",
                 *MAN]:
        assert os.path.isfile(path), f"{path} not installed"
    with open(f"{MODS}/psdm_socket.load") as f:
        assert f"LoadModule psdm_socket_module {MODULE}" in f.read()
    # Installed, not enabled: the admin runs a2enmod and systemctl enable.
    assert not os.path.lexists("/etc/apache2/mods-enabled/psdm_socket.load")
    assert not os.path.lexists("/etc/apache2/conf-enabled/psdm_socket-location.conf")
    assert not os.path.lexists("/etc/systemd/system/multi-user.target.wants/psdm_socketd.service")
    if shutil.which("systemd-tmpfiles"):  # the handoff socket's directory, made on install
        st = os.stat("/run/psdm_socket")
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o750
        assert (st.st_uid, st.st_gid) == (pwd.getpwnam(USER).pw_uid, grp.getgrnam(GROUP).gr_gid)
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", PKG]).stdout
    assert CONF in conffiles and f"{MODS}/psdm_socket.conf" in conffiles and LOCATION in conffiles
    r = run([WORKER, "--version"])
    assert r.stdout.startswith(f"psdm_socketd {project_version()} ")


def test_binaries_are_stripped(installed):
    for path in (WORKER, MODULE):
        sections = run(["readelf", "-S", "-W", path]).stdout
        assert ".debug_info" not in sections and ".symtab" not in sections, f"{path} is not stripped"


def test_system_user_and_group_and_apache_in_the_group(installed):
    pw = pwd.getpwnam(USER)
    gr = grp.getgrnam(GROUP)
    assert pw.pw_gid == gr.gr_gid and pw.pw_uid < 1000  # a system user with its own group
    assert pw.pw_shell.endswith("nologin")
    assert "www-data" in gr.gr_mem  # Apache's children may connect to the handoff socket


def test_configuration_is_a_conffile_readable_by_the_worker_only(installed):
    st = os.stat(CONF)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_uid == 0 and st.st_gid == grp.getgrnam(GROUP).gr_gid


@pytest.mark.parametrize("unit", [UNIT, TEMPLATE], ids=["one worker", "template"])
def test_unit_documents_and_scores(installed, unit, tmp_path):
    with open(unit) as f:
        text = f.read()
    assert "Documentation=man:psdm_socketd(8)" in text and f"file://{DOC}/README.Debian" in text
    assert re.search(r"^User=psdm-socket$", text, re.M) and re.search(r"^Group=psdm-socket$", text, re.M)
    if shutil.which("systemd-analyze") is None:
        return  # a machine without systemd: the score is checked where systemd is
    if unit == TEMPLATE:  # an instance of it, as `systemctl start psdm_socketd@1` makes
        unit = str(tmp_path / "psdm_socketd@1.service")
        shutil.copy(TEMPLATE, unit)
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", unit], capture_output=True, text=True,
                       timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 3.0, r.stdout
    r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


# ------------------------------------------------------------------- the installed stack

def as_the_unit_runs(argv):
    """argv as psdm_socketd.service runs it: User= and Group= psdm-socket (with their
    groups), NoNewPrivileges=, an empty CapabilityBoundingSet= and AmbientCapabilities=."""
    return [shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={USER}", f"--regid={GROUP}", "--init-groups",
            "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--", *argv]


def installed_config(broker, sock):
    """The installed configuration with the keys an admin sets (README.Debian): the same
    file, format and comments, pointed at the test's broker and a private socket."""
    with open(CONF) as f:
        text = f.read()
    keys = {"handoff_socket": sock, "kafka.bootstrap.servers": broker.bootstrap, "topics": "elog, experiments"}
    for key, value in keys.items():
        text, n = re.subn(rf"^{re.escape(key)} = .*$", f"{key} = {value}", text, flags=re.M)
        assert n == 1, f"{CONF} no longer sets {key}"
    return text + "authz = allow-all\nlog_level = debug\nkafka.fetch.wait.max.ms = 10\n"


def start_installed_worker(h, broker):
    """/usr/sbin/psdm_socketd as the unit starts it, with its runtime directory as systemd
    makes it (RuntimeDirectory=, 0750 psdm-socket:psdm-socket) under the harness's socket dir."""
    uid, gid = pwd.getpwnam(USER).pw_uid, grp.getgrnam(GROUP).gr_gid
    rundir = os.path.join(h.sock_dir, "run")
    os.mkdir(rundir, 0o750)
    os.chown(rundir, uid, gid)
    sock = os.path.join(rundir, "handoff.sock")
    conf = os.path.join(h.sock_dir, "psdm_socketd.conf")
    with open(conf, "w") as f:
        f.write(installed_config(broker, sock))
    os.chown(conf, 0, gid)
    os.chmod(conf, 0o640)
    run(as_the_unit_runs([WORKER, "-c", conf, "--check-config"]))  # ExecStartPre=
    proc = h.spawn("worker", as_the_unit_runs([WORKER, "-c", conf]), clean_exit=True)
    w = Worker(h, proc, conf, None)
    h.wait_for(proc, lambda: os.path.exists(sock), f"creating {sock}", 20)
    w.wait_log(r"ready: [1-9]\d* partition\(s\) assigned", 30, "Kafka partitions assigned")
    return w, sock


def start_installed_httpd(h, sock):
    """A private Apache whose generated config loads the module only through the installed
    psdm_socket.load and psdm_socket.conf, and includes the installed location snippet as a
    site does; the site's own location adds a WebAuth-style identity and the private socket."""
    # The harness's config, without its LoadModule of the tree's module.
    h.httpd_config = lambda port, body="", mpm="event": Harness.httpd_config(h, port, body, mpm, load_module=False)
    body = (f"Include {MODS}/psdm_socket.load\n"
            f"Include {MODS}/psdm_socket.conf\n"
            f"Include {LOCATION}\n"
            f'<LocationMatch "^/[^/]+_socketio/">\n'
            f"  PsdmSocketWorker unix:{sock}\n"
            f"  SetEnv WEBAUTH_USER alice\n"
            f"  PsdmSocketUser env:WEBAUTH_USER\n"
            f"</LocationMatch>\n")
    return h.start_httpd(body, mpm="event")


def test_kafka_record_reaches_a_client_through_the_installed_stack(installed, harness):
    broker = harness.start_broker(topics=["elog", "experiments"])
    worker, sock = start_installed_worker(harness, broker)
    st = os.stat(sock)  # as the unit makes it: the worker's group, 0660 (handoff_socket_mode)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_uid == pwd.getpwnam(USER).pw_uid and st.st_gid == grp.getgrnam(GROUP).gr_gid

    httpd = start_installed_httpd(harness, sock)
    r = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", httpd.url + "/psdm_socket/websocket_client.js"])
    assert r.stdout == "200"  # the installed client, through the installed Alias

    client = harness.start_client("python", httpd.url, path="/lgbk_socketio/socket.io/", join=["xpptut15"], count=1)
    client.wait("ready", timeout=30)
    broker.produce("elog", [json.dumps({"experiment_name": "xpptut15", "seq": 1})])
    client.wait("done", timeout=30)
    assert [m["seq"] for m in client.messages()] == [1]
    # Handed over by the installed module (Apache's children reached the socket through
    # the group psdm-socket), accepted by the worker's peer check (www-data).
    worker.wait_log(r"connected \(user 'alice'", 10, "the identity Apache passed")
    with open(os.path.join(harness.run_dir, "access.log")) as f:
        assert any('"GET /lgbk_socketio/socket.io/?' in line and '" 101 ' in line for line in f)


def test_purge_removes_the_files_and_keeps_the_user(installed):
    """Last: purges (the fixture then has nothing left to do)."""
    if installed["was_installed"]:
        pytest.skip(f"{PKG} was installed before the tests: left installed")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "purge", "-y", PKG], timeout=600, env=env)
    for path in (WORKER, MODULE, CONF, UNIT, f"{MODS}/psdm_socket.load", LOCATION):
        assert not os.path.exists(path), f"{path} left after purge"
    assert not os.path.exists("/run/psdm_socket")
    pwd.getpwnam(USER)  # kept, as Debian keeps system users
    grp.getgrnam(GROUP)
