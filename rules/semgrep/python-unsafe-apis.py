# Test cases for python-unsafe-apis.yaml
import hashlib
import hmac
import os
import pickle
import random
import stat
import tempfile

import sqlalchemy as sa
import yaml
from oslo_utils import secretutils


# --- yaml-unsafe-load ----------------------------------------------------------

def load_config(path, body):
    with open(path) as f:
        # ruleid: yaml-unsafe-load
        conf = yaml.load(f)
    # ruleid: yaml-unsafe-load
    data = yaml.load(body, Loader=yaml.Loader)
    # ruleid: yaml-unsafe-load
    data = yaml.unsafe_load(body)
    # ruleid: yaml-unsafe-load
    docs = list(yaml.full_load_all(body))
    # ruleid: yaml-unsafe-load
    data = yaml.load(open(path))
    # ruleid: yaml-unsafe-load
    docs = list(yaml.load_all(body, Loader=yaml.FullLoader))
    # ok: yaml-unsafe-load
    data = yaml.safe_load(body)
    # ok: yaml-unsafe-load
    data = yaml.load(body, Loader=yaml.SafeLoader)
    # ok: yaml-unsafe-load
    data = yaml.load(body, Loader=yaml.CSafeLoader)
    # ok: yaml-unsafe-load
    data = yaml.load(body, yaml.SafeLoader)
    return conf, data, docs


# --- weak-hash-for-security ------------------------------------------------------

def hashes(pub_data, password, image_id, salt):
    # ruleid: weak-hash-for-security
    fp = hashlib.md5(pub_data).hexdigest()
    # ruleid: weak-hash-for-security
    digest = secretutils.md5(pub_data).hexdigest()
    # ruleid: weak-hash-for-security
    h = hashlib.new('md5', pub_data)
    # ruleid: weak-hash-for-security
    stored = hashlib.sha1(salt + password.encode()).hexdigest()
    # ok: weak-hash-for-security
    fp = hashlib.md5(pub_data, usedforsecurity=False).hexdigest()
    # ok: weak-hash-for-security
    digest = secretutils.md5(pub_data, usedforsecurity=False).hexdigest()
    # A cache file name, not a security use.
    # ok: weak-hash-for-security
    name = hashlib.sha1(image_id.encode('utf-8')).hexdigest()
    # ok: weak-hash-for-security
    stored = hashlib.sha256(password.encode()).hexdigest()
    return fp, digest, h, stored, name


# --- eval-exec-non-literal ---------------------------------------------------------

def evaluate(expr, code, node):
    # ruleid: eval-exec-non-literal
    value = eval(expr)
    # ruleid: eval-exec-non-literal
    exec(code, {})
    # ruleid: eval-exec-non-literal
    value = eval('node.%s' % expr)
    # ok: eval-exec-non-literal
    value = eval('1 + 1')
    # ok: eval-exec-non-literal
    import ast
    value = ast.literal_eval(expr)
    # ok: eval-exec-non-literal
    value = node.eval(expr)
    return value


# --- pickle-loads-non-literal --------------------------------------------------------

def unpickle(blob, fileobj):
    # ruleid: pickle-loads-non-literal
    obj = pickle.loads(blob)
    # ruleid: pickle-loads-non-literal
    obj = pickle.load(fileobj)
    # ok: pickle-loads-non-literal
    obj = pickle.loads(b"\x80\x04K\x01.")
    # ok: pickle-loads-non-literal
    data = pickle.dumps(obj)
    return data


# --- tempfile-mktemp -----------------------------------------------------------------

def scratch():
    # ruleid: tempfile-mktemp
    path = tempfile.mktemp(suffix='.iso')
    # ok: tempfile-mktemp
    fd, path = tempfile.mkstemp(suffix='.iso')
    # ok: tempfile-mktemp
    tmpdir = tempfile.mkdtemp()
    return fd, path, tmpdir


# --- world-writable-permissions ----------------------------------------------------------

def permissions(path, fd, p):
    # ruleid: world-writable-permissions
    os.chmod(path, 0o777)
    # ruleid: world-writable-permissions
    os.chmod(path, 0o666)
    # ruleid: world-writable-permissions
    os.fchmod(fd, 0o1777)
    # ruleid: world-writable-permissions
    os.chmod(path, stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)
    # ruleid: world-writable-permissions
    p.chmod(0o777)
    # ok: world-writable-permissions
    os.chmod(path, 0o644)
    # ok: world-writable-permissions
    os.chmod(path, 0o755)
    # ok: world-writable-permissions
    os.chmod(path, 0o600)
    # ok: world-writable-permissions
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


# --- sql-built-by-formatting ------------------------------------------------------------

def queries(conn, session, name, host, bind, op, table):
    # ruleid: sql-built-by-formatting
    conn.execute("SELECT * FROM instances WHERE host = '%s'" % host)
    # ruleid: sql-built-by-formatting
    session.execute(f"DELETE FROM instances WHERE display_name = '{name}'")
    # ruleid: sql-built-by-formatting
    rows = conn.execute(sa.text("SELECT id FROM services WHERE host = '" + host + "'"))
    # ruleid: sql-built-by-formatting
    conn.execute("UPDATE instances SET host = '{}' WHERE uuid = '{}'".format(host, name))
    # ok: sql-built-by-formatting
    conn.execute(sa.text("SELECT * FROM instances WHERE host = :host"), {'host': host})
    # ok: sql-built-by-formatting
    conn.execute("SELECT * FROM instances WHERE host = %s", (host,))
    # ok: sql-built-by-formatting
    results = conn.execute(sa.select(table).where(table.c.host == host)).fetchall()
    # DDL takes identifiers, which cannot be bound parameters.
    # ok: sql-built-by-formatting
    op.execute('ALTER DATABASE `%s` DEFAULT CHARACTER SET utf8' % bind.engine.url.database)
    # Not SQL: a command runner.
    # ok: sql-built-by-formatting
    processutils.execute('ls ' + name)


# --- insecure-random-for-secret --------------------------------------------------------

def secrets_(length, chars):
    # ruleid: insecure-random-for-secret
    password = ''.join(random.choice(chars) for _ in range(length))
    # ruleid: insecure-random-for-secret
    token = '%032x' % random.getrandbits(128)
    # ruleid: insecure-random-for-secret
    self.auth_token = str(random.randint(0, 10 ** 12))
    # ok: insecure-random-for-secret
    r = random.SystemRandom()
    # ok: insecure-random-for-secret
    password = ''.join(r.choice(chars) for _ in range(length))
    # ok: insecure-random-for-secret
    password = ''.join(random.SystemRandom().choice(chars) for _ in range(length))
    # ok: insecure-random-for-secret
    delay = random.uniform(0, 2)
    # ok: insecure-random-for-secret
    host = random.choice(hosts)
    return password, token, delay, host


# --- non-constant-time-compare -------------------------------------------------------

def check_signature(req, shared_secret, instance_id, device, vif):
    signature = req.headers.get('X-Instance-ID-Signature')
    expected_signature = hmac.new(shared_secret, instance_id, hashlib.sha256).hexdigest()
    # ruleid: non-constant-time-compare
    if expected_signature != signature:
        return False
    # ruleid: non-constant-time-compare
    if req.params['token'] == self.token:
        return True
    # ok: non-constant-time-compare
    if not secretutils.constant_time_compare(expected_signature, signature):
        return False
    # ok: non-constant-time-compare
    if hmac.compare_digest(expected_signature, signature):
        return True
    # ok: non-constant-time-compare
    if signature is None or signature == '':
        return False
    # ok: non-constant-time-compare
    return device.mac == vif.address
