"""The reference service for `make bench`: what flask_socket_util does today.

A Flask-SocketIO application served by gunicorn with one eventlet worker, as deployed:

    PSDM_REF_BOOTSTRAP=127.0.0.1:9092 PSDM_REF_TOPICS=elog \
        gunicorn -k eventlet -w 1 --worker-connections 25000 -b 127.0.0.1:8000 \
                 --chdir bench/reference app:app

Clients connect to namespace /psdm_ws at /<PSDM_REF_PATH>/ (default
"bench_socketio/socket.io", so ws://HOST:PORT/bench_socketio/socket.io/?EIO=4&transport=websocket),
send the event "join" with a room (an experiment name) and receive every Kafka record
whose "experiment_name" names that room as the event "psdm_ws_msg", with
"psdm_ws_msg_type" set to the record's topic.

As in flask_socket_util, a thread consumes Kafka with kafka-python (Debian's
python3-kafka) and calls socketio.emit(...) per record; under eventlet's monkey patching
that thread is a green thread in the one worker process. Only the knobs a benchmark
needs differ from the deployed defaults, all set through the environment:

    PSDM_REF_BOOTSTRAP     Kafka bootstrap servers (required)
    PSDM_REF_TOPICS        comma list of topics (default "elog")
    PSDM_REF_PATH          Socket.IO path (default "bench_socketio/socket.io")
    PSDM_REF_FETCH_WAIT_MS fetch_max_wait_ms of the consumer (default 5, as the worker's
                           kafka.fetch.wait.max.ms in the benchmark)
    PSDM_REF_OFFSET_RESET  auto_offset_reset (default "earliest": a fresh broker per run)
"""
import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from flask import Flask  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402

NAMESPACE = "/psdm_ws"

BOOTSTRAP = os.environ.get("PSDM_REF_BOOTSTRAP", "")
TOPICS = [t.strip() for t in os.environ.get("PSDM_REF_TOPICS", "elog").split(",") if t.strip()]
PATH = os.environ.get("PSDM_REF_PATH", "bench_socketio/socket.io")
FETCH_WAIT_MS = int(os.environ.get("PSDM_REF_FETCH_WAIT_MS", "5"))
OFFSET_RESET = os.environ.get("PSDM_REF_OFFSET_RESET", "earliest")

logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
log = logging.getLogger("psdm_ref")
log.setLevel(logging.INFO)

app = Flask(__name__)
socketio = SocketIO(app, path=PATH, async_mode="eventlet", cors_allowed_origins="*",
                    logger=False, engineio_logger=False)


@socketio.on("connect", namespace=NAMESPACE)
def on_connect():
    pass


@socketio.on("join", namespace=NAMESPACE)
def on_join(experiment_name):
    join_room(experiment_name)


def kafka_loop():
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(*TOPICS, bootstrap_servers=BOOTSTRAP.split(","),
                             auto_offset_reset=OFFSET_RESET, fetch_max_wait_ms=FETCH_WAIT_MS,
                             enable_auto_commit=False, group_id=None)
    log.info("consuming %s from %s", ",".join(TOPICS), BOOTSTRAP)
    announced = False
    while True:
        batches = consumer.poll(timeout_ms=500)
        if not announced and consumer.assignment():
            log.info("ready: %d partition(s) assigned", len(consumer.assignment()))
            announced = True
        for tp, records in batches.items():
            for msg in records:
                try:
                    info = json.loads(msg.value)
                    info["psdm_ws_msg_type"] = msg.topic
                    room = info["experiment_name"]
                except (ValueError, KeyError, TypeError) as e:
                    log.warning("skipped record %s/%d@%d: %s", msg.topic, msg.partition, msg.offset, e)
                    continue
                socketio.emit("psdm_ws_msg", info, namespace=NAMESPACE, room=room)


def _start_consumer():
    if not BOOTSTRAP:
        log.error("PSDM_REF_BOOTSTRAP is not set: no Kafka consumer")
        return
    socketio.start_background_task(kafka_loop)


_start_consumer()
