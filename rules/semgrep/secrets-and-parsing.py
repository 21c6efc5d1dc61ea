# Test cases for secrets-and-parsing.yaml
import os
import random
import shlex
import subprocess

import six
from lxml import etree
from oslo_concurrency import processutils
import sqlalchemy as sa
from xml.dom import minidom


# --- insecure-random-secret-source -------------------------------------------
def generate_password(length=20, symbolgroups=None):
    chars = ''.join(symbolgroups)
    # ruleid: insecure-random-secret-source
    return ''.join(random.choice(chars) for _i in range(length))


def _make_token():
    # ruleid: insecure-random-secret-source
    return '%032x' % random.getrandbits(128)


def create_user(client, name):
    # ruleid: insecure-random-secret-source
    client.users.create(name, password=''.join(random.sample(ALPHABET, 16)))
    # ruleid: insecure-random-secret-source
    body = {'user': name, 'auth_code': str(random.randint(100000, 999999))}
    return body


def random_ok(hosts, retries):
    # ok: insecure-random-secret-source
    host = random.choice(hosts)
    # ok: insecure-random-secret-source
    time.sleep(random.uniform(0.5, 1.5))
    rng = random.SystemRandom()
    # ok: insecure-random-secret-source
    return ''.join(rng.choice(ALPHABET) for _ in range(16))


def get_token_ttl():
    # ok: insecure-random-secret-source
    return CONF.token_ttl + random.randint(0, 60)


def generate_secure_password(length=16):
    # ok: insecure-random-secret-source
    return secrets.token_urlsafe(length)


# --- predictable-random-seed ---------------------------------------------------
def seeding():
    # ruleid: predictable-random-seed
    random.seed(time.time())
    # ruleid: predictable-random-seed
    rnd = random.Random(42)
    # ok: predictable-random-seed
    random.seed()
    # ok: predictable-random-seed
    rnd = random.Random(os.urandom(16))


# --- unsafe-deserialization-format --------------------------------------------
class Job(BASE):
    # ruleid: unsafe-deserialization-format
    payload = sa.Column(sa.PickleType, nullable=True)
    # ruleid: unsafe-deserialization-format
    extra = sa.Column(sa.PickleType(), nullable=True)
    # ok: unsafe-deserialization-format
    details = sa.Column(sa.Text, nullable=True)


def load_state(data, path):
    # ruleid: unsafe-deserialization-format
    code = marshal.loads(data)
    # ruleid: unsafe-deserialization-format
    db = shelve.open(path)
    # ruleid: unsafe-deserialization-format
    obj = six.moves.cPickle.loads(data)
    # ok: unsafe-deserialization-format
    obj = jsonutils.loads(data)
    # ok: unsafe-deserialization-format
    arr = numpy.load(path, allow_pickle=False)


# --- xml-external-entities --------------------------------------------------------
def parse_s3_request(body):
    # ruleid: xml-external-entities
    parser = etree.XMLParser(remove_blank_text=True)
    # ok: xml-external-entities
    root = etree.fromstring(body)
    # ruleid: xml-external-entities
    dom = minidom.parseString(body)
    # ok: xml-external-entities
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    # ok: xml-external-entities
    root = lxml.etree.fromstring(body, parser)
    # ok: xml-external-entities
    root = defusedxml.lxml.fromstring(body)
    # ok: xml-external-entities
    dom = defusedxml.minidom.parseString(body)
    # ok: xml-external-entities
    tree = etree.parse(path)


# --- signature-compared-non-constant-time -----------------------------------------
def check_tempurl(sig, hmac_vals, key, message, expires):
    # ruleid: signature-compared-non-constant-time
    if sig not in hmac_vals:
        return False
    # ruleid: signature-compared-non-constant-time
    if signature in valid_signatures:
        return True
    # ruleid: signature-compared-non-constant-time
    if self._compute_signature(key, message) != provided:
        raise Unauthorized()
    # ruleid: signature-compared-non-constant-time
    if hmac_digest == expected:
        return True
    # ok: signature-compared-non-constant-time
    if not hmac.compare_digest(sig, expected):
        return False
    # ok: signature-compared-non-constant-time
    if 'signature' in params:
        return True
    # ok: signature-compared-non-constant-time
    if sig is None:
        return False


# --- secret-file-permissions -------------------------------------------------------
def write_keys(key_path, private_key, keyring_file, contents):
    # ruleid: secret-file-permissions
    os.chmod(key_path, 0o644)
    # ruleid: secret-file-permissions
    os.chmod(keyring_file, 0o640)
    # ok: secret-file-permissions
    os.chmod(key_path, 0o600)
    # ok: secret-file-permissions
    os.chmod(public_key_path, 0o644)
    with open(key_path, 'w') as f:
        # ruleid: secret-file-permissions
        f.write(private_key)
    with open(config_path, 'w') as f:
        # ok: secret-file-permissions
        f.write(contents)


def write_key_umask(key_path, private_key):
    old = os.umask(0o077)
    try:
        with open(key_path, 'w') as f:
            # ok: secret-file-permissions
            f.write(private_key)
    finally:
        os.umask(old)


# --- path-join-stripped-leading-slash ----------------------------------------------
def inject_file(fs, path, contents):
    # ruleid: path-join-stripped-leading-slash
    target = os.path.join(fs, path.lstrip('/'))
    # ruleid: path-join-stripped-leading-slash
    target = os.path.join(CONF.images_dir, image_path.lstrip(os.sep))
    # ok: path-join-stripped-leading-slash
    target = os.path.join(fs, 'etc', 'hostname')
    with open(target, 'w') as f:
        f.write(contents)


def inject_file_checked(fs, path):
    absolute = os.path.realpath(os.path.join(fs, path.lstrip('/')))
    if not absolute.startswith(os.path.realpath(fs) + '/'):
        raise exception.Invalid()
    return absolute


# --- formatted-command-reaches-execute ---------------------------------------------
def run_console(port, address, pw_file):
    cmd = "socat TCP-LISTEN:%s,bind=%s EXEC:ipmitool -f %s" % (port, address, pw_file)
    # ruleid: formatted-command-reaches-execute
    processutils.execute(*shlex.split(cmd))
    command = 'rbd import --pool {} {}'.format(pool, path)
    # ruleid: formatted-command-reaches-execute
    subprocess.check_call(command.split())
    mkfs_cmd = f"mkfs -t {fs} -L {label} {target}"
    # ok: formatted-command-reaches-execute
    utils.execute(mkfs_cmd, shell=False)


def run_ok(path):
    cmd = ['qemu-img', 'info', path]
    # ok: formatted-command-reaches-execute
    processutils.execute(*cmd)
    cmd = "qemu-img info"
    # ok: formatted-command-reaches-execute
    processutils.execute(*shlex.split(cmd))
