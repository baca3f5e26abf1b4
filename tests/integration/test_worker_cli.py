"""psdm_socketd's command line: --version, --check-config, -o, and the refusals an
ops engineer meets first (no authz, typos), each naming the file, line and key."""
import os
import subprocess

from harness import BUILD, REPO

WORKER = os.path.join(BUILD, "psdm_socketd")


def run(*args, timeout=10):
    return subprocess.run([WORKER, *args], capture_output=True, text=True, timeout=timeout)


def write(harness, text, name="w.conf"):
    path = os.path.join(harness.run_dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("psdm_socketd ") and "libwebsockets 4." in r.stdout


def test_check_config_prints_effective_values_with_secrets_masked(harness):
    path = write(harness, "listen = 127.0.0.1:0\ntopics = elog\nauthz = allow-all\n"
                          "kafka.sasl.password = hunter2\n")
    r = run("-c", path, "--check-config", "-o", "max_payload=2M")
    assert r.returncode == 0, r.stderr
    assert "max_payload = 2097152" in r.stdout
    assert "kafka.sasl.password = ***" in r.stdout and "hunter2" not in r.stdout
    assert "configuration OK" in r.stderr


def test_example_config_refuses_to_start_until_authz_is_chosen():
    r = run("-c", os.path.join(REPO, "conf/psdm_socketd.conf"), "--check-config")
    assert r.returncode == 1
    assert "no 'authz' set" in r.stderr and "allow-all" in r.stderr
    r = run("-c", os.path.join(REPO, "conf/psdm_socketd.conf"), "--check-config", "-o", "authz=allow-all")
    assert r.returncode == 0, r.stderr


def test_unknown_key_and_bad_value_name_file_line_and_key(harness):
    path = write(harness, "listen = 127.0.0.1:0\ntopics = elog\nauthz = allow-all\nmax_payloda = 1M\n")
    r = run("-c", path)
    assert r.returncode == 1
    assert f"{path}:4: unknown key 'max_payloda'" in r.stderr
    path = write(harness, "listen = 127.0.0.1:0\ntopics = elog\nauthz = allow-all\nclient_backlog = lots\n")
    r = run("-c", path)
    assert r.returncode == 1
    assert f"{path}:4: key 'client_backlog'" in r.stderr


def test_unsupported_authz_provider_is_refused_at_start(harness):
    path = write(harness, "listen = 127.0.0.1:0\ntopics = elog\nauthz = file:/etc/psdm_socket/acl\n")
    r = run("-c", path)
    assert r.returncode == 1
    assert "authz" in r.stderr and "file" in r.stderr
