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
