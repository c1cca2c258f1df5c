#!/usr/bin/env python3
"""stele and Confluent's clients through a real schema registry (Apicurio).

Run by ctest (tests/interop/run.sh) as
    test_interop.py BUILD_DIR SOURCE_DIR
with the venv of scripts/test-venv.sh (confluent-kafka 2.16.1, fastavro).
Confluent's Python client is the oracle: events stele writes to Kafka
decode with its AvroDeserializer through the registry, field for field
equal to `stele events`; commands it produces with AvroSerializer (which
registers through the API) under each subject strategy are decided by a
stele host; a schema it registered first is used by stele with the same
id. Also: `stele schema check|register|list|diff` on registry.backend:
rest, and the registry's faults (down at start, down during a run,
restarted empty).

The registry is one of the test's own (port 18093, started --fresh), so
its ids and subjects start from nothing; the Kafka broker is the shared
test broker (scripts/kafka-start.sh), and the test deletes its topics.
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

BUILD, SOURCE = (os.path.abspath(a) for a in sys.argv[1:3])
del sys.argv[1:3]
BOOTSTRAP = "127.0.0.1:9092"
REG_PORT = 18093
REG_DIR = f"/tmp/stele-registry-{REG_PORT}"
REG_URL = f"http://127.0.0.1:{REG_PORT}/apis/ccompat/v7"
STELE = os.path.join(BUILD, "stele")
APP = "interop%08x" % random.getrandbits(32)


def registry(action):
    script = "registry-stop.sh" if action == "stop" else "registry-start.sh"
    args = [os.path.join(SOURCE, "scripts", script)]
    if action == "fresh":
        args.append("--fresh")
    env = dict(os.environ, STELE_REGISTRY_PORT=str(REG_PORT),
               STELE_REGISTRY_DIR=REG_DIR)
    subprocess.run(args, env=env, check=True, stdout=sys.stderr)


def ensure_kafka():
    import socket
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", 9092))
        return
    except OSError:
        pass
    finally:
        s.close()
    env = dict(os.environ, STELE_KAFKA_DIR=os.environ.get(
        "STELE_TEST_KAFKA_DIR", "/tmp/stele-kafka-test"))
    subprocess.run([os.path.join(SOURCE, "scripts", "kafka-start.sh"),
                    "--fresh"], env=env, check=True, stdout=sys.stderr)


def write_config(dirname, app, strategy="record", retries=4, timeout_ms=10000,
                 extra=""):
    path = os.path.join(dirname, f"{app}-{strategy}.yaml")
    with open(path, "w") as f:
        f.write(f"""app: {app}
data_dir: {dirname}/data-{app}-{strategy}
schemas: {SOURCE}/schemas
plugins:
  - {BUILD}/plugins/bank_account.so
  - {BUILD}/plugins/bank_balances.so
  - {BUILD}/upcasters/bank_deposited_v1_v2.so
log:
  backend: kafka
  partitions: 2
  replication_factor: 1
  kafka:
    bootstrap.servers: {BOOTSTRAP}
    linger.ms: 5
registry:
  backend: rest
  url: {REG_URL}
  subject_strategy: {strategy}
  timeout_ms: {timeout_ms}
  retries: {retries}
  verify_ms: 200
engine:
  command_batch: 200
  commit_interval_ms: 20
logging:
  level: warn
{extra}""")
    return path


def stele(*args, cfg, check=True, timeout=120, stdin=None):
    p = subprocess.run([STELE, *args, "-c", cfg], capture_output=True,
                       text=True, timeout=timeout, input=stdin)
    if check and p.returncode != 0:
        raise AssertionError(f"stele {' '.join(args)} -> {p.returncode}\n"
                             f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def send(cfg, cmd):
    p = stele("send", "--timeout", "30000", json.dumps(cmd), cfg=cfg)
    return json.loads(p.stdout)


class Host:
    """A `stele run` process."""

    def __init__(self, cfg):
        self.log = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen([STELE, "run", "-c", cfg], stdout=self.log,
                                  stderr=subprocess.STDOUT, text=True)

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.output()


def wire_id(value):
    assert value[0] == 0, "not the Confluent wire format"
    return struct.unpack(">i", value[1:5])[0]


def read_topic(topic, n_partitions=2, timeout=20, want=None):
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": str(uuid.uuid4()),
                  "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(n_partitions)])
    out, deadline, quiet = [], time.time() + timeout, time.time()
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            if want is not None and len(out) >= want:
                break
            if want is None and out and time.time() - quiet > 2:
                break
            continue
        if m.error():
            continue
        out.append(m)
        quiet = time.time()
    c.close()
    return out


def wait_reply(app, command_id, timeout=30):
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": str(uuid.uuid4()),
                  "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(f"{app}.replies", p, 0) for p in range(2)])
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            if m.key() and m.key().decode() == command_id:
                return json.loads(m.value())
        raise AssertionError(f"no reply to {command_id} within {timeout}s")
    finally:
        c.close()


def avsc(name):
    with open(os.path.join(SOURCE, "schemas", "bank", name)) as f:
        return f.read()


def as_plain(v):
    """fastavro's dicts as JSON values (bytes and the like as strings)."""
    return json.loads(json.dumps(v, default=str))


def wait_gate(sr, host, timeout=30):
    """Until a starting host's schema gate has registered the bank's last
    subject (the gate goes by name)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if host.p.poll() is not None:
            raise AssertionError(f"the host exited: {host.output()}")
        if "bank.Withdrawn" in sr.get_subjects():
            time.sleep(1)
            return
        time.sleep(0.3)
    raise AssertionError("the host's gate did not finish")


class Interop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ensure_kafka()
        registry("fresh")
        # Stopped even when the setup fails (tearDownClass would not run).
        cls.addClassCleanup(registry, "stop")
        cls.dir = tempfile.mkdtemp(prefix="stele-interop-")
        cls.sr = SchemaRegistryClient({"url": REG_URL})
        # A Confluent client registers first: stele must use that id.
        cls.opened_id = cls.sr.register_schema(
            "bank.AccountOpened", Schema(avsc("bank.AccountOpened.v1.avsc"),
                                         "AVRO"))
        # Apicurio gives the same text under a second subject an id of its
        # own and leaves gaps: stele must not assume ids are contiguous or
        # one per schema.
        cls.sr.register_schema("gap.AccountOpened", Schema(
            avsc("bank.AccountOpened.v1.avsc"), "AVRO"))
        cls.cfg = write_config(cls.dir, APP)
        cls.bridge_deposited()

    @classmethod
    def bridge_deposited(cls):
        # bank.Deposited v2 is not compatible with v1 (amount: long ->
        # Money); stele reads v1 through an upcaster, other readers cannot:
        # the gate asks for a subject level that allows the step.
        cls.sr.set_compatibility("bank.Deposited", "NONE")

    @classmethod
    def tearDownClass(cls):
        a = AdminClient({"bootstrap.servers": BOOTSTRAP})
        topics = [t for t in a.list_topics(timeout=10).topics
                  if t.startswith(APP)]
        if topics:
            for f in a.delete_topics(topics).values():
                try:
                    f.result(30)
                except Exception as e:  # noqa: BLE001 - best effort
                    print(f"deleting a topic: {e}", file=sys.stderr)
        shutil.rmtree(cls.dir, ignore_errors=True)

    # ---------------------------------------------------------------
    # stele schema on registry.backend: rest

    def test_1_schema_commands_on_the_rest_registry(self):
        p = stele("schema", "check", cfg=self.cfg)
        self.assertIn("bank.OpenAccount", p.stdout + p.stderr)
        p = stele("schema", "register", cfg=self.cfg)
        p = stele("schema", "list", cfg=self.cfg)
        out = p.stdout
        for s in ("bank.OpenAccount", "bank.Deposit", "bank.Deposited",
                  "bank.AccountOpened"):
            self.assertIn(s, out)
        self.assertIn(str(self.opened_id), out)
        # Registered: nothing differs but the subject stele does not know,
        # and a second register changes nothing.
        p = stele("schema", "diff", cfg=self.cfg, check=False)
        diffs = [line for line in p.stdout.splitlines()
                 if line[:1] in "+-~" and line.strip()]
        self.assertEqual(len(diffs), 1, p.stdout)
        self.assertTrue(diffs[0].startswith("- gap.AccountOpened"), p.stdout)
        self.assertEqual(p.returncode, 1, p.stdout)
        before = self.sr.get_subjects()
        stele("schema", "register", cfg=self.cfg)
        self.assertEqual(before, self.sr.get_subjects())
        # The schema Confluent's client registered first keeps its id.
        v = self.sr.get_latest_version("bank.AccountOpened")
        self.assertEqual(v.schema_id, self.opened_id)
        self.assertEqual(
            self.sr.get_versions("bank.AccountOpened"), [1])
        # stele sets a new subject's level to registry.compatibility
        # (BACKWARD_TRANSITIVE), although Apicurio answers GET /config/{s}
        # with its global default instead of 40408.
        level = self.sr.get_compatibility("bank.OpenAccount")
        self.assertEqual(level, "BACKWARD_TRANSITIVE", level)

    # A registry that is read-only to this client (as production
    # registries are to consumers): a proxy in front of the test registry
    # forwards reads and lookups (GET, POST /subjects/{s}) and refuses
    # every write with 403. Before, every stele process registered every
    # schema it knew at start, so reading broke on such a registry.
    def test_1b_readers_never_write_to_the_registry(self):
        import http.server
        import threading
        import urllib.error
        import urllib.request
        writes, reads = [], []

        class ReadOnly(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def forward(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                path = self.path.split("?")[0].rstrip("/")
                parts = path.split("/")
                lookup = (method == "POST" and len(parts) == 3 and
                          parts[1] == "subjects")
                if method != "GET" and not lookup:
                    writes.append(f"{method} {self.path}")
                    out = json.dumps({"error_code": 40301,
                                      "message": "read-only"}).encode()
                    self.send_response(403)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                reads.append(f"{method} {self.path}")
                req = urllib.request.Request(REG_URL + self.path, data=body,
                                             method=method)
                for h in ("Content-Type", "Accept"):
                    if self.headers.get(h):
                        req.add_header(h, self.headers[h])
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        code, out = r.status, r.read()
                except urllib.error.HTTPError as e:
                    code, out = e.code, e.read()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self):
                self.forward("GET")

            def do_POST(self):
                self.forward("POST")

            def do_PUT(self):
                self.forward("PUT")

            def do_DELETE(self):
                self.forward("DELETE")

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ReadOnly)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            cfg = write_config(self.dir, APP, strategy="record")
            with open(cfg) as f:
                text = f.read()
            ro = cfg.replace(".yaml", "-readonly.yaml")
            with open(ro, "w") as f:
                f.write(text.replace(
                    f"url: {REG_URL}",
                    f"url: http://127.0.0.1:{srv.server_address[1]}"))
            for args in (("status",),
                         ("events", "--aggregate", "Account"),
                         ("schema", "check")):
                p = stele(*args, cfg=ro, check=False)
                self.assertEqual(p.returncode, 0,
                                 f"stele {' '.join(args)} on a read-only "
                                 f"registry: {p.stdout[-800:]}"
                                 f"{p.stderr[-800:]}")
            self.assertEqual(writes, [], f"readers wrote: {writes}")
            self.assertTrue(reads, "the readers asked nothing")
        finally:
            srv.shutdown()

    # ---------------------------------------------------------------
    # Events: stele writes, Confluent's deserializer reads

    def test_2_events_decode_with_confluents_deserializer(self):
        host = Host(self.cfg)
        try:
            r = send(self.cfg, {"type": "bank.OpenAccount",
                                "aggregate_id": "acc-1",
                                "data": {"owner": "ada"}})
            self.assertTrue(r.get("ok", True), r)
            send(self.cfg, {"type": "bank.Deposit", "aggregate_id": "acc-1",
                            "data": {"amount": 250, "channel": "atm"}})
            send(self.cfg, {"type": "bank.Deposit", "aggregate_id": "acc-1",
                            "data": {"amount": 5}})
        finally:
            out = host.stop()
        events = read_topic(f"{APP}.Account.events", want=3)
        self.assertEqual(len(events), 3, out)
        des = AvroDeserializer(self.sr)
        ctx = SerializationContext(f"{APP}.Account.events", MessageField.VALUE)
        theirs = [as_plain(des(m.value(), ctx)) for m in events]
        ids = [wire_id(m.value()) for m in events]
        self.assertEqual(ids[0], self.opened_id)
        p = stele("events", "--aggregate", "Account", "--id", "acc-1",
                  cfg=self.cfg)
        ours = [json.loads(line) for line in p.stdout.splitlines() if line]
        self.assertEqual(len(ours), 3, p.stdout)
        for o, t, i in zip(ours, theirs, ids):
            self.assertEqual(o["data"], t, o)
            self.assertEqual(o["stored"]["schema_id"], i, o)
        print("stele events == AvroDeserializer:", theirs, file=sys.stderr)
        # The second oracle: Confluent's JavaScript client, when
        # scripts/test-npm.sh has installed it.
        npm = os.environ.get("STELE_NPM_DIR", "")
        if not os.path.isdir(os.path.join(npm, "node_modules",
                                          "@confluentinc", "schemaregistry")):
            print("npm oracle not installed: skipped", file=sys.stderr)
            return
        p = subprocess.run(
            ["node", os.path.join(SOURCE, "tests", "interop", "decode.js"),
             REG_URL, f"{APP}.Account.events",
             *[m.value().hex() for m in events]],
            capture_output=True, text=True, timeout=60,
            env=dict(os.environ, NODE_PATH=os.path.join(npm, "node_modules")))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), theirs)
        print("stele events == @confluentinc/schemaregistry:", p.stdout,
              file=sys.stderr)

    # ---------------------------------------------------------------
    # Commands: Confluent's serializer writes, stele decides

    def produce_command(self, strategy, ctype, avsc_file, agg, data):
        from confluent_kafka.schema_registry import (
            record_subject_name_strategy, topic_record_subject_name_strategy,
            topic_subject_name_strategy)
        fn = {"topic": topic_subject_name_strategy,
              "record": record_subject_name_strategy,
              "topic_record": topic_record_subject_name_strategy}[strategy]
        topic = f"{APP}.Account.commands"
        ser = AvroSerializer(self.sr, avsc(avsc_file),
                             conf={"auto.register.schemas": True,
                                   "subject.name.strategy": fn})
        value = ser(data, SerializationContext(topic, MessageField.VALUE))
        cid = f"{strategy}-{uuid.uuid4()}"
        p = Producer({"bootstrap.servers": BOOTSTRAP,
                      "partitioner": "murmur2_random"})
        p.produce(topic, key=agg, value=value,
                  headers=[("command_id", cid.encode())])
        p.flush(30)
        return cid, wire_id(value)

    def test_3_commands_from_confluents_serializer_are_decided(self):
        # The topic strategy puts every command type under one subject:
        # only a subject level of NONE takes them all.
        self.sr.set_compatibility(f"{APP}.Account.commands-value", "NONE")
        host = Host(self.cfg)
        try:
            results = {}
            for i, strategy in enumerate(("topic", "record", "topic_record")):
                agg = f"acc-{strategy}"
                cid, sid = self.produce_command(
                    strategy, "bank.OpenAccount", "bank.OpenAccount.v1.avsc",
                    agg, {"owner": strategy, "initial_deposit": 10})
                r1 = wait_reply(APP, cid)
                cid, sid2 = self.produce_command(
                    strategy, "bank.Deposit", "bank.Deposit.v2.avsc", agg,
                    {"amount": 7 + i, "channel": "kafka"})
                r2 = wait_reply(APP, cid)
                results[strategy] = (r1, r2, sid, sid2)
            for strategy, (r1, r2, sid, sid2) in results.items():
                for r in (r1, r2):
                    self.assertNotIn("error", json.dumps(r).lower(), (strategy, r))
            self.assertIn("bank.Account.commands-value".replace("bank", APP),
                          self.sr.get_subjects())
            self.assertIn(f"{APP}.Account.commands-bank.Deposit",
                          self.sr.get_subjects())
            print("commands by strategy:", results, file=sys.stderr)
        finally:
            host.stop()
        p = stele("state", "Account", "acc-topic_record", cfg=self.cfg)
        self.assertIn("topic_record", p.stdout)

    # ---------------------------------------------------------------
    # Faults

    def test_4_registry_down_during_a_run_uses_cached_ids(self):
        host = Host(self.cfg)
        try:
            send(self.cfg, {"type": "bank.OpenAccount", "aggregate_id": "acc-d",
                            "data": {"owner": "down"}})
            cid, _ = self.produce_command("record", "bank.Deposit",
                                          "bank.Deposit.v2.avsc", "acc-d",
                                          {"amount": 1, "channel": "x"})
            wait_reply(APP, cid)
            registry("stop")
            try:
                # The serializer holds its id; the host holds its ids.
                cid, _ = self.produce_command("record", "bank.Deposit",
                                              "bank.Deposit.v2.avsc", "acc-d",
                                              {"amount": 2, "channel": "x"})
            except Exception:
                cid = None
            if cid is None:
                self.skipTest("the serializer asks the registry every time")
            r = wait_reply(APP, cid)
            self.assertNotIn("error", json.dumps(r).lower(), r)
            self.assertIsNone(host.p.poll(), host.output())
        finally:
            host.stop()
            registry("start")
            self.bridge_deposited()

    def test_5_registry_down_at_start_is_a_clear_error(self):
        registry("stop")
        try:
            cfg = write_config(self.dir, APP + "d", retries=2, timeout_ms=500)
            t0 = time.time()
            p = subprocess.run([STELE, "run", "-c", cfg], capture_output=True,
                               text=True, timeout=120)
            took = time.time() - t0
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(f"127.0.0.1:{REG_PORT}", p.stderr)
            self.assertIn("attempts", p.stderr)
            print(f"down at start: exit {p.returncode} after {took:.1f}s: "
                  f"{p.stderr.strip()}", file=sys.stderr)
            # Not half started: it made none of its topics.
            a = AdminClient({"bootstrap.servers": BOOTSTRAP})
            made = [t for t in a.list_topics(timeout=10).topics
                    if t.startswith(APP + "d.")]
            self.assertEqual(made, [])
        finally:
            registry("start")
            self.bridge_deposited()

    # A registry restarted empty hands out its ids again, to other schemas.
    # A host that keeps running must not go on writing events under ids
    # that now name something else (docs/design.md: "treat an id that now
    # resolves to a different schema as a stop").
    def test_6_registry_restarted_empty_while_a_host_runs(self):
        host = Host(self.cfg)
        try:
            wait_gate(self.sr, host)
            try:
                send(self.cfg, {"type": "bank.OpenAccount",
                                "aggregate_id": "acc-r",
                                "data": {"owner": "restart"}})
            except AssertionError as e:
                raise AssertionError(f"{e}\nhost: {host.stop()}") from None
            cid, _ = self.produce_command("record", "bank.Deposit",
                                          "bank.Deposit.v2.avsc", "acc-r",
                                          {"amount": 3, "channel": "x"})
            wait_reply(APP, cid)
            before = len([m for m in read_topic(f"{APP}.Account.events")
                          if m.key() == b"acc-r"])
            registry("fresh")
            self.bridge_deposited()
            # Other schemas take the ids the registry gave out before.
            for i in range(40):
                self.sr = SchemaRegistryClient({"url": REG_URL})
                self.sr.register_schema(f"other.S{i}", Schema(json.dumps(
                    {"type": "record", "name": f"S{i}", "namespace": "other",
                     "fields": [{"name": "f", "type": "string"},
                                {"name": "g", "type": "long"}]}), "AVRO"))
            cid, _ = self.produce_command("record", "bank.Deposit",
                                          "bank.Deposit.v2.avsc", "acc-r",
                                          {"amount": 4, "channel": "y"})
            try:
                r = wait_reply(APP, cid, timeout=20)
            except AssertionError:
                r = None
            running = host.p.poll() is None
        finally:
            out = host.stop()
        events = [m for m in read_topic(f"{APP}.Account.events")
                  if m.key() == b"acc-r"]
        written = []  # (event type, id, what the registry now names)
        for m in events[before:]:
            sid = wire_id(m.value())
            etype = dict(m.headers())["event_type"].decode()
            now = json.loads(self.sr.get_schema(sid).schema_str)
            written.append((etype, sid,
                            f"{now.get('namespace', '')}.{now.get('name')}"))
        print(f"restarted empty: reply {r}, host running {running}; events "
              f"written after the restart (type, id, the id's schema now): "
              f"{written}\nhost output:\n{out[-2000:]}", file=sys.stderr)
        # A reader that starts now fetches the old ids afresh: it must name
        # the mismatch (event_type vs the schema the id now names), never
        # show an event decoded with another record's schema.
        p = stele("events", "--aggregate", "Account", "--id", "acc-r",
                  cfg=self.cfg, check=False)
        print(f"stele events after the restart: exit {p.returncode}\n"
              f"{p.stdout[-1500:]}\n{p.stderr[-1500:]}", file=sys.stderr)
        with self.subTest("readers"):
            for line in p.stdout.splitlines():
                ev = json.loads(line)
                self.assertFalse(json.dumps(ev).count("other.S"),
                                 f"an event shown with another record's "
                                 f"schema: {ev}")
        # Either stele stops (no reply, or a rejection naming the
        # registry) or it writes under ids that name its schemas.
        for etype, sid, named in written:
            self.assertEqual(named, etype,
                             f"stele wrote a {etype} event under schema id "
                             f"{sid}, which the registry now says is {named}")
        if r is not None and r.get("status") == "accepted":
            self.assertTrue(written, f"accepted without an event: {r}")

    # Three hosts of the bank example start at once on an empty registry
    # and share it: each runs its schema gate, all three must come up, and
    # commands to aggregates on every partition are decided.
    def test_7_three_hosts_start_at_once_on_an_empty_registry(self):
        registry("fresh")
        self.bridge_deposited()
        self.sr = SchemaRegistryClient({"url": REG_URL})
        hosts = [Host(self.cfg) for _ in range(3)]
        try:
            time.sleep(8)
            exited = [h.output() for h in hosts if h.p.poll() is not None]
            self.assertEqual(exited, [], "a host did not survive its start")
            for i in range(6):
                r = send(self.cfg, {"type": "bank.OpenAccount",
                                    "aggregate_id": f"acc-3h-{i}",
                                    "data": {"owner": "three"}})
                self.assertEqual(r.get("status"), "accepted", r)
        finally:
            for h in hosts:
                h.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
