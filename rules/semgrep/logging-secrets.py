# Test cases for logging-secrets.yaml
import logging

from oslo_log import log as oslo_logging
from oslo_utils import strutils

LOG = oslo_logging.getLogger(__name__)


def set_admin_password(context, instance, new_pass, creds, conf):
    # ruleid: secret-in-log-call
    LOG.debug("Setting admin password %s", new_pass.password)
    # ruleid: secret-in-log-call
    LOG.info("Setting admin password to %s", instance.admin_password)
    # ruleid: secret-in-log-call
    LOG.debug("Request context token: %s", context.auth_token)
    # ruleid: secret-in-log-call
    LOG.debug("Using credentials %s", creds['secret'])
    # ruleid: secret-in-log-call
    LOG.debug("Using api key %s", conf.get('api_key'))
    # ruleid: secret-in-log-call
    LOG.debug("Console token %s", console.token)
    # ruleid: secret-in-log-call
    LOG.warning("Connecting with %(user)s/%(pw)s",
                {'user': user, 'pw': password})
    # ruleid: secret-in-log-call
    LOG.debug("Connecting with %(user)s/%(password)s",
              {'user': user, 'password': self._conn_pass})
    # ruleid: secret-in-log-call
    LOG.error("Auth failed for %s" % (user, private_key))
    # ruleid: secret-in-log-call
    LOG.error(f"Auth failed with token {token}")
    # ruleid: secret-in-log-call
    LOG.info("chap secret is {}".format(chap_secret))
    # ruleid: secret-in-log-call
    logging.debug("password: " + password)
    # ruleid: secret-in-log-call
    self.log.exception("Could not authenticate using %s", self.admin_credentials)


def ok_cases(context, instance, secret_uuid, password):
    # ok: secret-in-log-call
    LOG.debug("Admin password set", instance=instance)
    # ok: secret-in-log-call
    LOG.debug("Creating libvirt secret %s", secret_uuid)
    # ok: secret-in-log-call
    LOG.debug("Token TTL is %d", CONF.consoleauth.token_ttl)
    # ok: secret-in-log-call
    LOG.debug("Generated password of length %d", CONF.password_length)
    # ok: secret-in-log-call
    LOG.debug(strutils.mask_password(msg), instance=instance)
    # ok: secret-in-log-call
    LOG.debug("Connecting with %s", strutils.mask_password(password))
    # ok: secret-in-log-call
    LOG.debug("Headers: %s", strutils.mask_dict_password(headers))
    # ok: secret-in-log-call
    LOG.debug("Inject admin password fs=%(fs)s admin_passwd=<SANITIZED>",
              {'fs': fs})
    # ok: secret-in-log-call
    LOG.debug("Connecting with %(password)s", {'password': '***'})
    # ok: secret-in-log-call
    LOG.debug("Password set: %s", bool(password))
    # ok: secret-in-log-call
    LOG.debug("Password given: %s", password is not None)
    # ok: secret-in-log-call
    LOG.info("password")
    # ok: secret-in-log-call
    LOG.info("Secret %s has been found", self._host.find_secret('volume', vol))


def policy_and_tokens(action, credentials, token, token_dict, ec2_credentials):
    # oslo.policy's "credentials" are the caller's user/project/roles.
    # ok: secret-in-log-call
    LOG.debug('Policy check for %(action)s failed with credentials '
              '%(credentials)s', {'action': action, 'credentials': credentials})
    # ruleid: secret-in-log-call
    LOG.info("Received Token: %(token)s, %(token_dict)s",
             {'token': token, 'token_dict': token_dict})
    # ruleid: secret-in-log-call
    LOG.debug("Created EC2 credentials %s", ec2_credentials)


# --- credential-structure-in-log ------------------------------------------
def connect_volume(self, connection_info, instance, block_device_info=None,
                   **kwargs):
    # ruleid: credential-structure-in-log
    LOG.debug("Connecting volume %s", connection_info)
    # ruleid: credential-structure-in-log
    LOG.debug("Attaching with %(conn)s", {'conn': connection_info['data']})
    # ruleid: credential-structure-in-log
    LOG.info("block device info: %s" % block_device_info, instance=instance)
    # ok: credential-structure-in-log
    LOG.debug("==> connect_volume: call %s", kwargs)
    # ruleid: credential-structure-in-log
    LOG.error(f"iSCSI login failed for {connection_properties}")
    # ruleid: credential-structure-in-log
    LOG.debug("Ironic node %s driver_info %s", node.uuid, node.driver_info)
    LOG.debug("attachment %(id)s: %(info)s",
              # ruleid: credential-structure-in-log
              {'id': attachment.id, 'info': attachment.connection_info})
    # ruleid: credential-structure-in-log
    LOG.debug("REQ: %s %s body=%s", method, url, request_body)
    # ok: credential-structure-in-log
    LOG.debug("RESP: %s", resp.text)
    # ruleid: credential-structure-in-log
    LOG.debug("Request headers: %s", req.headers)
    # ruleid: credential-structure-in-log
    LOG.debug("context: %s", context.to_dict())
    # ruleid: credential-structure-in-log
    LOG.warning("Bad auth: %s", auth_dict)
    # ruleid: credential-structure-in-log
    LOG.debug("connection data %s", volume['connection_info'])


def raise_with_connection_data(sr_ref, connection_data, vdi_uuid):
    try:
        introduce(sr_ref, vdi_uuid)
    except Exception:
        raise exception.StorageError(
            reason=_('Unable to introduce VDI for SR %(sr)s with %(data)s')
            # ruleid: credential-structure-in-log
            % {'sr': sr_ref, 'data': connection_data})
    # ruleid: credential-structure-in-log
    raise ValueError("bad connection info: %s" % connection_data)


def masked_structures(self, connection_info, kwargs, block_device_info):
    # ok: credential-structure-in-log
    LOG.debug("Connecting volume %s",
              strutils.mask_dict_password(connection_info))
    # ok: credential-structure-in-log
    LOG.debug("Connecting volume %s", strutils.mask_password(connection_info))
    # ok: credential-structure-in-log
    LOG.debug("==> call %s", strutils.mask_password(kwargs))
    # ok: credential-structure-in-log
    LOG.debug("Attaching to target %s",
              connection_info['data']['target_iqn'])
    # ok: credential-structure-in-log
    LOG.debug("Volume driver type %s", connection_info.get('driver_volume_type'))
    # ok: credential-structure-in-log
    LOG.debug("Got %d devices", len(block_device_info))
    # ok: credential-structure-in-log
    LOG.debug("Keys: %s", sorted(kwargs))
    # ok: credential-structure-in-log
    LOG.debug("Serial given: %s", 'serial' in connection_info)
    # ok: credential-structure-in-log
    LOG.debug("Attaching volume", **kwargs)
    # ok: credential-structure-in-log
    LOG.debug("Response status %s", resp.status_code)
    # ok: credential-structure-in-log
    raise exception.InvalidInput(**kwargs)


# --- secret-command-line-in-log ---------------------------------------------
def iscsiadm_update(self, props, property_key, property_value):
    cmd = ['iscsiadm', '-m', 'node', '-T', props['target_iqn'],
           '--op', 'update', '-n', 'node.session.auth.password',
           '-v', props['auth_password']]
    # ruleid: secret-command-line-in-log
    LOG.debug("Running %s", ' '.join(cmd))
    # ok: secret-command-line-in-log
    LOG.debug("Running %s", strutils.mask_password(' '.join(cmd)))


def mount_cifs(share, username, password):
    command = 'mount -t cifs %s -o username=%s,password=%s' % (
        share, username, password)
    try:
        run(command)
    except OSError:
        # ruleid: secret-command-line-in-log
        raise exception.MountFailed("Command failed: %s" % command)


def mount_nfs(share):
    cmd = ['mount', '-t', 'nfs', share]
    # ok: secret-command-line-in-log
    LOG.debug("Running %s", cmd)


# --- secret-option-not-marked-secret -----------------------------------------
opts = [
    # ruleid: secret-option-not-marked-secret
    cfg.StrOpt('admin_password', help='Ironic keystone admin password.'),
    # ruleid: secret-option-not-marked-secret
    cfg.StrOpt('admin_auth_token', help='Ironic keystone auth token.'),
    # ruleid: secret-option-not-marked-secret
    cfg.MultiStrOpt('backend_argument', default=[],
                    help='Arguments supplied to the backend module.'),
    # ok: secret-option-not-marked-secret
    cfg.StrOpt('san_password', default='', help='Password for SAN controller',
               secret=True),
    # ok: secret-option-not-marked-secret
    cfg.IntOpt('password_length', default=12),
    # ok: secret-option-not-marked-secret
    cfg.StrOpt('rbd_secret_uuid', help='The libvirt uuid of the secret'),
    # ok: secret-option-not-marked-secret
    cfg.BoolOpt('chap_password_required', default=False),
]
