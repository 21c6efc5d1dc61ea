# Test cases for transport.yaml
import ssl

import httplib2
import requests
from keystoneauth1 import session as ks_session
from glanceclient import client as glanceclient

# --- plaintext-http-url --------------------------------------------------------

# ruleid: plaintext-http-url
GLANCE_ENDPOINT = "http://glance.cloud.internal:9292/v2"
# ruleid: plaintext-http-url
ENDPOINTS = {'identity': 'http://10.0.0.5:5000/v3'}


def fetch(host, port, session):
    # ruleid: plaintext-http-url
    url = 'http://%s:%s/v1/images' % (host, port)
    # ruleid: plaintext-http-url
    return session.get("http://metadata.provider.net/latest", timeout=10)


def build_url(path):
    # ruleid: plaintext-http-url
    return "http://api.partner.com/" + path


# ok: plaintext-http-url
NOVA_NS = "http://openstack.org/xmlns/libvirt/nova/1.1"
# ok: plaintext-http-url
XSI = "http://www.w3.org/2001/XMLSchema-instance"
# ok: plaintext-http-url
SOAP_ENV = 'http://schemas.xmlsoap.org/soap/envelope/'
# ok: plaintext-http-url
METADATA = 'http://169.254.169.254/openstack/latest/meta_data.json'
# ok: plaintext-http-url
VNC_URL = 'http://127.0.0.1:6080/vnc_auto.html'
# ok: plaintext-http-url
KEYSTONE = 'http://localhost:5000/v3'
# ok: plaintext-http-url
SAMPLE = 'http://zvm.example.org:8080/'
# ok: plaintext-http-url
IPV6_LOOPBACK = 'http://[::1]:8774/'
# ok: plaintext-http-url
SECURE = 'https://glance.cloud.internal:9292/v2'
# ok: plaintext-http-url
LINKS = {'html': 'http://docs.openstack.org/'}
# ok: plaintext-http-url
HELP = "http://libvirt.org/html/libvirt-libvirt-host.html#virConnectBaselineCPU"


def scheme_checks(url):
    """Accept URLs such as http://www.foo.com/bar/123?q=4 ."""
    # ok: plaintext-http-url
    if url.startswith('http://'):
        return 80
    # ok: plaintext-http-url
    if url.startswith('http://legacy.cloud.net'):
        return 80
    # ok: plaintext-http-url
    scheme = 'http://'
    return scheme


# --- tls-verification-disabled -------------------------------------------------


def clients(url, conf, ctx_url):
    # ruleid: tls-verification-disabled
    requests.get(url, verify=False, timeout=30)
    # ruleid: tls-verification-disabled
    sess = ks_session.Session(auth=conf.auth, verify=False)
    # ruleid: tls-verification-disabled
    resp = sess.get(url, verify=False)
    # ruleid: tls-verification-disabled
    sess = requests.Session(verify=False, trust_env=False)
    # ruleid: tls-verification-disabled
    resp = requests.post(url,
                         verify=False)
    # ruleid: tls-verification-disabled
    glance = glanceclient.Client('2', url, insecure=True)
    s = requests.Session()
    # ruleid: tls-verification-disabled
    s.verify = False
    # ruleid: tls-verification-disabled
    ctx = ssl._create_unverified_context()
    ctx2 = ssl.create_default_context()
    # ruleid: tls-verification-disabled
    ctx2.check_hostname = False
    # ruleid: tls-verification-disabled
    ctx2.verify_mode = ssl.CERT_NONE
    # ruleid: tls-verification-disabled
    conn = connector.ZVMConnector(host, port, ssl_enabled=True, verify=False)
    # ruleid: tls-verification-disabled
    h = httplib2.Http(disable_ssl_certificate_validation=True)
    # ruleid: tls-verification-disabled
    sock = ssl.wrap_socket(raw, cert_reqs=ssl.CERT_NONE)


def verified(url, conf, raw):
    # ok: tls-verification-disabled
    requests.get(url, verify=conf.ca_file, timeout=30)
    # ok: tls-verification-disabled
    sess = ks_session.Session(auth=conf.auth, verify=conf.cafile or True)
    # ok: tls-verification-disabled
    glance = glanceclient.Client('2', url, insecure=conf.glance.insecure)
    # ok: tls-verification-disabled
    image_meta = image.validate(verify=False)
    # Server side: not asking clients for a certificate is the norm.
    # ok: tls-verification-disabled
    sock = ssl.wrap_socket(raw, server_side=True, certfile='c', cert_reqs=ssl.CERT_NONE)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # ok: tls-verification-disabled
    server_ctx.verify_mode = ssl.CERT_NONE


def deprecated():
    # ok: plaintext-http-url
    msg = _('Moved to http://git.openstack.org/cgit/openstack/ec2-api/')
    # ok: plaintext-http-url
    return exc.HTTPGone(explanation='http://git.openstack.org/cgit/openstack/ec2-api/')


# --- tls-verification-disabled-setting ---------------------------------------
def tls_settings(conf, host, url):
    # ruleid: tls-verification-disabled-setting
    self.ssl_verify = False
    # ruleid: tls-verification-disabled-setting
    api_insecure = True
    # ruleid: tls-verification-disabled-setting
    client = glanceclient.Client('2', endpoint, ssl_verify=False)
    # ruleid: tls-verification-disabled-setting
    kwargs = {'verify_ssl': False, 'timeout': 30}
    # ruleid: tls-verification-disabled-setting
    conn = vmware_session(host, cert_verify=False)
    # ruleid: tls-verification-disabled-setting
    urllib3.disable_warnings()
    # ruleid: tls-verification-disabled-setting
    requests.packages.urllib3.disable_warnings(InsecureRequestWarning)
    # ruleid: tls-verification-disabled-setting
    ssl._create_default_https_context = ssl._create_unverified_context
    # ruleid: tls-verification-disabled-setting
    opener = urllib.request.build_opener(HTTPSHandler(context_factory=ssl._create_unverified_context))
    # ruleid: tls-verification-disabled-setting
    conn = httplib.HTTPSConnection(host, port, key_file=key, cert_file=cert)
    # ruleid: tls-verification-disabled-setting
    cmd = ['skopeo', 'copy', '--src-tls-verify=false', src, dst]
    # ruleid: tls-verification-disabled-setting
    processutils.execute('curl', '--insecure', '-o', path, url)
    # ruleid: tls-verification-disabled-setting
    podman_cmd = ['podman', 'pull', '--tls-verify=false', image]


def tls_settings_ok(conf, host, url, verify=False):
    # ok: tls-verification-disabled-setting
    self.ssl_verify = conf.glance.api_insecure is False
    # ok: tls-verification-disabled-setting
    client = glanceclient.Client('2', endpoint, ssl_verify=True)
    # ok: tls-verification-disabled-setting
    conn = http.client.HTTPSConnection(host, port, context=ctx)
    # ok: tls-verification-disabled-setting
    conn = httplib.HTTPSConnection(host, port, context=ssl.create_default_context())
    # ok: tls-verification-disabled-setting
    parser.add_argument('--insecure', action='store_true', help='Skip TLS verification')
    # ok: tls-verification-disabled-setting
    cmd = ['skopeo', 'copy', '--src-tls-verify=true', src, dst]
    # ok: tls-verification-disabled-setting
    self.insecure = conf.insecure
    # ok: tls-verification-disabled-setting
    cmd = ['ls', '-l', path]


def make_session(insecure=True):
    # ok: tls-verification-disabled-setting
    return session.Session(verify=not insecure)


# --- tls-verification-off-by-default ------------------------------------------
opts = [
    # ruleid: tls-verification-off-by-default
    cfg.BoolOpt('api_insecure', default=True,
                help='Allow to perform insecure SSL requests.'),
    # ruleid: tls-verification-off-by-default
    cfg.BoolOpt('ssl_verify', default=False, help='Verify HTTPS connections.'),
    # ok: tls-verification-off-by-default
    cfg.BoolOpt('insecure', default=False, help='Verify HTTPS connections.'),
    # ok: tls-verification-off-by-default
    cfg.BoolOpt('verify_ssl', default=True),
]
