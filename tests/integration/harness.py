"""Starts the real parts of psdm-socket inside one test, and stops them after it.

Each Harness owns a run directory (logs, generated configs) and a short socket
directory. Every process it starts runs in a process group of its own and is
stopped (SIGTERM, then SIGKILL) when the harness closes, also when the test
failed. Readiness is probed (a file appears, a port answers, a line is logged);
a component that exits or misses its deadline fails the test with a message
naming it and the tail of its log.
"""
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PSDM_BUILD_DIR", os.path.join(REPO, "build"))
APACHE2 = os.environ.get("PSDM_APACHE2", "/usr/sbin/apache2")
APACHE_MODULES = "/usr/lib/apache2/modules"


class HarnessError(AssertionError):
    """A component could not be started or did not become ready."""


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


class Process:
    """A started component: its Popen, its name and its log file."""

    def __init__(self, name, popen, log, clean_exit=False):
        self.name, self.popen, self.log = name, popen, log
        # Our own daemons exit 0 on SIGTERM; anything else (a crash, a sanitizer
        # report, a leak) fails the test that started them.
        self.clean_exit = clean_exit

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self, timeout=5.0):
        """SIGTERM the process group, then SIGKILL it. Returns the exit status."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait()
        return self.popen.returncode


class Harness:
    def __init__(self, name, log_root=None):
        self.name = name
        log_root = log_root or os.path.join(BUILD, "test-logs")
        self.run_dir = os.path.join(log_root, name)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        os.makedirs(self.run_dir)
        os.chmod(log_root, 0o755)  # httpd's children (www-data when root) read htdocs here
        # Unix socket paths are limited to 108 bytes: keep them short, in /tmp.
        self.sock_dir = tempfile.mkdtemp(prefix="psdm-")
        os.chmod(self.sock_dir, 0o755)
        self.procs = []

    # ---------------------------------------------------------------- processes

    def spawn(self, name, argv, env=None, stdout=None, clean_exit=False):
        """Starts argv in its own process group; stderr (and stdout unless given)
        go to RUN_DIR/NAME.log. Raises HarnessError if the binary is missing."""
        if not os.path.exists(argv[0]):
            raise HarnessError(f"{name}: binary {argv[0]} not found (did the build run?)")
        log = os.path.join(self.run_dir, f"{name}.log")
        logf = open(log, "ab")
        try:
            popen = subprocess.Popen(argv, stdout=stdout or logf, stderr=logf, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True, cwd=self.run_dir,
                                     text=stdout is not None)
        finally:
            logf.close()
        proc = Process(name, popen, log, clean_exit)
        self.procs.append(proc)
        return proc

    def wait_for(self, proc, ready, what, timeout):
        """Polls ready() until true. Fails naming the component if it exits or the
        deadline passes."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            if ready():
                return
            if proc is not None and not proc.alive():
                raise HarnessError(f"{proc.name} exited with status {proc.popen.returncode} before {what}:\n"
                                   f"{tail(proc.log)}")
            if time.monotonic() > deadline:
                name = proc.name if proc else "harness"
                log = tail(proc.log) if proc else ""
                raise HarnessError(f"{name}: not ready within {timeout:.0f} s ({what}):\n{log}")
            time.sleep(delay)  # polling interval, not synchronisation
            delay = min(delay * 2, 0.1)

    def close(self, failed=False):
        """Stops everything this harness started, newest first. Keeps the run
        directory (logs) when the test failed, removes it otherwise."""
        unclean = []
        for proc in reversed(self.procs):
            status = proc.stop()
            if proc.clean_exit and status != 0:
                unclean.append(f"{proc.name} exited with status {status}")
        shutil.rmtree(self.sock_dir, ignore_errors=True)
        failed = failed or bool(unclean)
        if failed:
            print(f"\n==== logs of {self.name} kept in {self.run_dir}")
            for entry in sorted(os.listdir(self.run_dir)):
                path = os.path.join(self.run_dir, entry)
                if entry.endswith(".log") and os.path.isfile(path):
                    print(f"---- {entry} (last lines)\n{tail(path)}")
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if unclean:
            raise HarnessError("; ".join(unclean) + f" (logs in {self.run_dir})")

    # ---------------------------------------------------------------- components

    def start_broker(self, topics=(), partitions=1, timeout=10):
        """Starts psdm_kafka_dev; returns a Broker with .bootstrap ("127.0.0.1:PORT")."""
        bfile = os.path.join(self.run_dir, "kafka.bootstrap")
        argv = [os.path.join(BUILD, "psdm_kafka_dev"), "--bootstrap-file", bfile, "--partitions", str(partitions)]
        for t in topics:
            argv += ["--topic", t]
        proc = self.spawn("kafka", argv, clean_exit=True)
        self.wait_for(proc, lambda: os.path.exists(bfile), "writing its bootstrap address", timeout)
        with open(bfile) as f:
            bootstrap = f.read().strip()
        port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
        self.wait_for(proc, lambda: port_open(port), f"accepting on {bootstrap}", timeout)
        return Broker(self, proc, bootstrap)

    def httpd_config(self, port, body="", mpm="event", load_module=True):
        """A complete httpd config for a private server on 127.0.0.1:port."""
        htdocs = os.path.join(self.run_dir, "htdocs")
        os.makedirs(htdocs, exist_ok=True)
        with open(os.path.join(htdocs, "ready.txt"), "w") as f:
            f.write("ready\n")
        user = ""
        if os.geteuid() == 0:  # httpd refuses to serve as root; Debian's web user then
            user = "User www-data\nGroup www-data\n"
        mpm_conf = {
            "event": "StartServers 1\nServerLimit 2\nThreadsPerChild 25\nMaxRequestWorkers 50\n",
            "worker": "StartServers 1\nServerLimit 2\nThreadsPerChild 25\nMaxRequestWorkers 50\n",
            "prefork": "StartServers 2\nMaxRequestWorkers 20\n",
        }[mpm]
        module = f"LoadModule psdm_socket_module {BUILD}/mod_psdm_socket.so\n" if load_module else ""
        return (
            f"ServerRoot {self.run_dir}\n"
            f"ServerName 127.0.0.1:{port}\n"
            f"Listen 127.0.0.1:{port}\n"
            f"PidFile {self.run_dir}/httpd.pid\n"
            f"DefaultRuntimeDir {self.sock_dir}\n"
            f"Mutex file:{self.sock_dir} default\n"
            f"ErrorLog {self.run_dir}/httpd.log\n"
            f"LogLevel info\n"
            f"LoadModule mpm_{mpm}_module {APACHE_MODULES}/mod_mpm_{mpm}.so\n"
            f"LoadModule authz_core_module {APACHE_MODULES}/mod_authz_core.so\n"
            f"LoadModule headers_module {APACHE_MODULES}/mod_headers.so\n"
            f"LoadModule env_module {APACHE_MODULES}/mod_env.so\n"
            f"LoadModule alias_module {APACHE_MODULES}/mod_alias.so\n"
            f"LoadModule mime_module {APACHE_MODULES}/mod_mime.so\n"
            f"TypesConfig /etc/mime.types\n"
            f"LoadModule dir_module {APACHE_MODULES}/mod_dir.so\n"
            f"DirectoryIndex index.html\n"
            f"{module}"
            f"{user}"
            f"{mpm_conf}"
            f'LogFormat "%h %u \\"%r\\" %>s %b %D" psdm\n'
            f"CustomLog {self.run_dir}/access.log psdm\n"
            f"DocumentRoot {htdocs}\n"
            f"<Directory />\n  AllowOverride None\n</Directory>\n"
            f"{body}\n"
        )

    def start_httpd(self, body="", mpm="event", port=None, timeout=15, https=False):
        """Starts Debian's apache2 in the foreground with a generated config that
        loads our module. Returns an Httpd with .port and .url."""
        mpm = os.environ.get("PSDM_TEST_MPM", mpm)
        port = port or free_port()
        conf = os.path.join(self.run_dir, "httpd.conf")
        with open(conf, "w") as f:
            f.write(self.httpd_config(port, body, mpm))
        check = subprocess.run([APACHE2, "-t", "-f", conf], capture_output=True, text=True)
        if check.returncode != 0:
            raise HarnessError(f"httpd: generated config rejected by apache2 -t:\n{check.stderr}")
        proc = self.spawn("httpd", [APACHE2, "-f", conf, "-DFOREGROUND"])
        url = f"{'https' if https else 'http'}://127.0.0.1:{port}"
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # the tests' own self-signed certificate

        def ready():
            try:
                with urllib.request.urlopen(url + "/ready.txt", timeout=1, context=insecure) as r:
                    return r.status == 200
            except OSError:
                return False
        # httpd logs a bind failure to its ErrorLog and exits: wait_for reports it.
        self.wait_for(proc, ready, f"serving {url}/ready.txt", timeout)
        return Httpd(proc, port, url, conf)


    def start_worker(self, config_text, wait_kafka=True, timeout=20, name="worker"):
        """Starts build/psdm_socketd with the given config text (no `listen` means the
        harness adds one on a free port). Waits until it listens and, with wait_kafka,
        until its consumer group has partitions assigned, so that messages produced
        afterwards are delivered."""
        port = None
        if "\nlisten" not in "\n" + config_text:
            port = free_port()
            config_text += f"listen = 127.0.0.1:{port}\n"
        conf = os.path.join(self.run_dir, f"{name}.conf")
        with open(conf, "w") as f:
            f.write(config_text)
        proc = self.spawn(name, [os.path.join(BUILD, "psdm_socketd"), "-c", conf], clean_exit=True)
        w = Worker(self, proc, conf, port)
        m = w.wait_log(r"listening for WebSocket connections on [^:]+:(\d+)", timeout, "listening")
        w.port = int(m.group(1))
        w.url = f"http://127.0.0.1:{w.port}"
        if wait_kafka:
            w.wait_log(r"ready: [1-9]\d* partition\(s\) assigned", timeout, "Kafka partitions assigned")
        return w

    def start_client(self, kind, url, path="/lgbk_socketio/socket.io/", join=(), count=-1, timeout_ms=60000,
                      ns="/psdm_ws", name=None, extra=()):
        """Starts a real Socket.IO client: kind is 'node4' (socket.io-client 4.x),
        'node2' (socket.io-client 2.x) or 'python' (python3-socketio)."""
        clients = os.path.join(REPO, "tests", "integration", "clients")
        if kind in ("node4", "node2"):
            argv = ["/usr/bin/node", os.path.join(clients, "sio_client.js")] + (["--v2"] if kind == "node2" else [])
        elif kind == "python":
            argv = ["/usr/bin/python3", os.path.join(clients, "py_client.py")]
        else:
            raise ValueError(kind)
        argv += ["--url", url, "--path", path, "--ns", ns, "--count", str(count), "--timeout-ms", str(timeout_ms)]
        if join:
            argv += ["--join", ",".join(join)]
        argv += list(extra)
        name = name or f"client-{kind}-{len(self.procs)}"
        proc = self.spawn(name, argv, stdout=subprocess.PIPE)
        return EventClient(self, proc, proc.popen.stdout)


    def start_browser(self, url, count=-1, timeout_ms=60000, name=None):
        """Opens url in headless Chromium (tests/integration/clients/browser.js)."""
        argv = ["/usr/bin/node", os.path.join(REPO, "tests", "integration", "clients", "browser.js"),
                "--url", url, "--count", str(count), "--timeout-ms", str(timeout_ms)]
        proc = self.spawn(name or f"browser-{len(self.procs)}", argv, stdout=subprocess.PIPE)
        return EventClient(self, proc, proc.popen.stdout)


class Broker:
    def __init__(self, harness, proc, bootstrap):
        self.harness, self.proc, self.bootstrap = harness, proc, bootstrap

    def produce(self, topic, values, timeout=30):
        """Produces each value (str) as one message with kcat, in order, to partition 0."""
        data = "".join(v + "\n" for v in values)
        r = subprocess.run(["kcat", "-P", "-b", self.bootstrap, "-t", topic, "-p", "0"],
                           input=data, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise HarnessError(f"kcat produce to {topic} failed ({r.returncode}): {r.stderr}")


    def down(self, timeout=10):
        """Takes the brokers down (SIGUSR1): connections are closed and refused.
        Returns once the port refuses connections."""
        os.kill(self.proc.pid, signal.SIGUSR1)
        self._wait_port(False, timeout)

    def up(self, timeout=10):
        """Brings the brokers back (SIGUSR2); returns once the port accepts again."""
        os.kill(self.proc.pid, signal.SIGUSR2)
        self._wait_port(True, timeout)

    def _wait_port(self, want_open, timeout):
        port = int(self.bootstrap.split(",")[0].rsplit(":", 1)[1])
        self.harness.wait_for(self.proc, lambda: port_open(port) == want_open,
                              f"port {port} {'accepting' if want_open else 'refusing'} connections", timeout)


class Httpd:
    def __init__(self, proc, port, url, conf):
        self.proc, self.port, self.url, self.conf = proc, port, url, conf


# -------------------------------------------------------------------- the worker

class Worker:
    def __init__(self, harness, proc, conf, port):
        self.harness, self.proc, self.conf, self.port = harness, proc, conf, port
        self.url = f"http://127.0.0.1:{port}" if port else None

    def log_text(self):
        with open(self.proc.log, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=10, what=None):
        """Waits until the worker's log matches regex `pattern`; returns the match."""
        rx = re.compile(pattern)
        found = []

        def ready():
            m = rx.search(self.log_text())
            if m:
                found.append(m)
            return bool(m)
        self.harness.wait_for(self.proc, ready, what or f"logging /{pattern}/", timeout)
        return found[0]


def worker_config(**keys):
    """Config file text from keyword arguments; dots in keys are written as '__'
    (kafka__bootstrap__servers) and values are written as given."""
    return "".join(f"{k.replace('__', '.')} = {v}\n" for k, v in keys.items())




# -------------------------------------------------------------------- clients

class EventClient:
    """A client process that prints one JSON event per line (tests/integration/clients)."""

    def __init__(self, harness, proc, stdout):
        self.harness, self.proc, self.events = harness, proc, []
        self._q = queue.Queue()

        def reader():
            for line in stdout:
                try:
                    ev = json.loads(line)
                except ValueError:
                    ev = {"ev": "garbage", "line": line}
                self._q.put(ev)
            self._q.put({"ev": "eof"})
        threading.Thread(target=reader, daemon=True).start()

    def wait(self, ev, timeout=20):
        """Returns the next event named `ev`, collecting all events seen on the way."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"{self.proc.name}: no '{ev}' event within {timeout} s; saw "
                                   f"{[e['ev'] for e in self.events][-10:]}")
            try:
                e = self._q.get(timeout=left)
            except queue.Empty:
                continue
            self.events.append(e)
            if e["ev"] == ev:
                return e
            if e["ev"] == "eof":
                raise HarnessError(f"{self.proc.name} exited before '{ev}':\n{tail(self.proc.log)}")

    def messages(self):
        return [e["data"] for e in self.events if e["ev"] == "msg"]
