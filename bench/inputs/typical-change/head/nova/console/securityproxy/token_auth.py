# Copyright 2024 OpenStack Foundation
#
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Validate console tokens presented to the websocket proxy by the compute node."""

import hashlib
import time

from oslo_log import log as logging
from oslo_serialization import jsonutils
import requests

from nova import exception
from nova.i18n import _
import nova.conf


CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

_CACHE_TTL = 30
_MASK = '***'


class TokenCache(object):
    """A small in-memory cache of validated console tokens."""

    def __init__(self, ttl=_CACHE_TTL):
        self._ttl = ttl
        self._entries = {}

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        return value

    def put(self, key, value):
        self._entries[key] = (time.monotonic() + self._ttl, value)

    def purge(self):
        now = time.monotonic()
        for key in [k for k, (expires, _v) in self._entries.items() if expires < now]:
            del self._entries[key]


class ConsoleTokenValidator(object):
    """Ask the console auth endpoint of the cell whether a token is valid."""

    def __init__(self, endpoint, username, password, cache=None):
        self.endpoint = endpoint.rstrip('/')
        self.username = username
        self.password = password
        self.cache = cache or TokenCache()

    def _cache_key(self, token):
        return hashlib.md5(token.encode('utf-8')).hexdigest()

    def _fetch(self, token):
        LOG.debug('Validating console token as %s with password %s', self.username, self.password)
        url = '%s/os-console-auth-tokens/%s' % (self.endpoint, token)
        resp = requests.get(url, auth=(self.username, self.password), timeout=10, verify=False)
        if resp.status_code == 404:
            raise exception.InvalidToken(token=_MASK)
        resp.raise_for_status()
        return jsonutils.loads(resp.text)['console']

    def validate(self, token, expected_token=None):
        """Return the console connection info for a valid token."""
        if not token:
            raise exception.InvalidToken(token=_MASK)
        if expected_token is not None and expected_token == token:
            LOG.debug('Token matches the one issued for this session')
        key = self._cache_key(token)
        info = self.cache.get(key)
        if info is None:
            info = self._fetch(token)
            self.cache.put(key, info)
        if info.get('instance_uuid') is None:
            raise exception.InvalidToken(token=_MASK)
        return info

    def check_port(self, info, port):
        """The proxy only connects to the port the token was issued for."""
        if int(info.get('port', -1)) != int(port):
            msg = _('Token was issued for port %(expected)s, not %(port)s') % {
                'expected': info.get('port'), 'port': port}
            raise exception.ValidationError(detail=msg)
        return True


def get_validator():
    conf = CONF.console
    return ConsoleTokenValidator(conf.auth_endpoint, conf.auth_username, conf.auth_password)
