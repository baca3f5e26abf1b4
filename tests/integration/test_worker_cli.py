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


def test_check_config_output_reads_back_unchanged(harness):
    # Values the plain syntax cannot carry come back quoted: a '#' after a blank or at the
    # start (a comment otherwise), a leading '"', blanks at either end.
    path = write(harness, "listen = 127.0.0.1:0\ntopics = elog, runs.v2\nauthz = \"file:/etc/psdm/a #b.acl\"\n"
                          'room_field = " exp #1 "   # quoted: blanks and # kept\n'
                          'event = "say \\"hi\\" \\\\o/"\n'
                          "kafka.client.id = a\\b=c\n")
    r = run("-c", path, "--check-config", "-o", "kafka.group.id=#g", "-o", 'authz_user_header=#x')
    assert r.returncode == 0, r.stderr
    for line in ['authz = "file:/etc/psdm/a #b.acl"', 'room_field = " exp #1 "', 'event = say "hi" \\o/',
                 "kafka.client.id = a\\b=c", 'kafka.group.id = "#g"', 'authz_user_header = "#x"',
                 "topics = elog, runs.v2"]:
        assert line + "\n" in r.stdout, (line, r.stdout)
    again = run("-c", write(harness, r.stdout, name="dump.conf"), "--check-config")
    assert again.returncode == 0, again.stderr
    assert again.stdout == r.stdout


def test_topic_names_follow_kafkas_rule(harness):
    for topics, bad in [("elog, bad topic", "bad topic"), ("elog,..", ".."), ("a/b", "a/b"), ("x" * 250, "x" * 100 + "...")]:
        path = write(harness, f"listen = 127.0.0.1:0\nauthz = allow-all\ntopics = {topics}\n")
        r = run("-c", path, "--check-config")
        assert r.returncode == 1
        assert f"{path}:3: key 'topics': '{bad}' is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -, not '.' or " \
               "'..')" in r.stderr, r.stderr
    path = write(harness, "listen = 127.0.0.1:0\nauthz = allow-all\ntopics = elog\nglobal_room_topics = exp eriments\n")
    r = run("-c", path, "--check-config")
    assert r.returncode == 1 and f"{path}:4: key 'global_room_topics': 'exp eriments' is not a Kafka topic" in r.stderr
    path = write(harness, "listen = 127.0.0.1:0\nauthz = allow-all\ntopics = elog\n")
    r = run("-c", path, "--check-config", "-o", "kafka.a b=1")
    assert r.returncode == 1 and "-o: key 'kafka.a b': not a librdkafka property name" in r.stderr
