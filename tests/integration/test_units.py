"""The systemd units as shipped (conf/): the template that runs N workers
(psdm_socketd@.service) is the one-worker unit but for its instance lines, so that a
hardening or a limit changed in one is changed in both; its socket is the one-worker socket
per instance. (The installed units are scored and verified by systemd-analyze in
test_deb.py.)"""
import os
import re

from harness import REPO

CONF = os.path.join(REPO, "conf")


def section(path, name):
    """The lines of [name] of a unit file, comments and blank lines left out."""
    with open(path) as f:
        text = f.read()
    body = re.search(rf"^\[{name}\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S).group(1)
    return [line for line in body.splitlines() if line.strip() and not line.startswith("#")]


def test_the_template_runs_each_instance_as_the_one_worker_unit():
    one = section(os.path.join(CONF, "psdm_socketd.service"), "Service")
    each = section(os.path.join(CONF, "psdm_socketd@.service"), "Service")
    instance = [line for line in each if "%i" in line]
    assert [line for line in each if "%i" not in line] == \
        [line for line in one if not line.startswith(("ExecStartPre=", "ExecStart="))]
    sock = "-o handoff_socket=/run/psdm_socket/worker%i.sock $PSDM_SOCKETD_OPTS"
    assert instance == ["EnvironmentFile=-/etc/psdm_socket/worker%i.env",
                        f"ExecStartPre=/usr/sbin/psdm_socketd -c /etc/psdm_socket/psdm_socketd.conf {sock} --check-config",
                        f"ExecStart=/usr/sbin/psdm_socketd -c /etc/psdm_socket/psdm_socketd.conf {sock}"]


def test_the_template_socket_is_the_one_worker_socket_per_instance():
    one = section(os.path.join(CONF, "psdm_socketd.socket"), "Socket")
    each = section(os.path.join(CONF, "psdm_socketd@.socket"), "Socket")
    assert [line.replace("worker%i.sock", "handoff.sock").replace("@%i", "") for line in each] == one
