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

from unittest import mock

from nova.console.securityproxy import token_auth
from nova import exception
from nova import test


class TokenCacheTestCase(test.NoDBTestCase):

    def test_put_get(self):
        cache = token_auth.TokenCache(ttl=30)
        cache.put('k', {'port': 5900})
        self.assertEqual({'port': 5900}, cache.get('k'))

    @mock.patch('time.monotonic')
    def test_expired(self, mock_time):
        mock_time.return_value = 100
        cache = token_auth.TokenCache(ttl=30)
        cache.put('k', 'v')
        mock_time.return_value = 200
        self.assertIsNone(cache.get('k'))

    @mock.patch('time.monotonic')
    def test_purge(self, mock_time):
        mock_time.return_value = 100
        cache = token_auth.TokenCache(ttl=30)
        cache.put('a', 1)
        mock_time.return_value = 120
        cache.put('b', 2)
        mock_time.return_value = 140
        cache.purge()
        assert 'a' not in cache._entries
        assert 'b' in cache._entries


class ConsoleTokenValidatorTestCase(test.NoDBTestCase):

    def setUp(self):
        super(ConsoleTokenValidatorTestCase, self).setUp()
        self.validator = token_auth.ConsoleTokenValidator(
            'http://cell1.example.org:8774/', 'nova', 'secretpass')

    def test_empty_token(self):
        self.assertRaises(exception.InvalidToken, self.validator.validate, '')

    @mock.patch.object(token_auth.ConsoleTokenValidator, '_fetch')
    def test_validate_cached(self, mock_fetch):
        mock_fetch.return_value = {'instance_uuid': 'abc', 'port': 5900}
        self.validator.validate('tok')
        self.validator.validate('tok')
        mock_fetch.assert_called_once_with('tok')

    @mock.patch.object(token_auth.ConsoleTokenValidator, '_fetch')
    def test_validate_no_instance(self, mock_fetch):
        mock_fetch.return_value = {'port': 5900}
        self.assertRaises(exception.InvalidToken, self.validator.validate, 'tok')

    def test_check_port(self):
        assert self.validator.check_port({'port': '5900'}, 5900)
        self.assertRaises(exception.ValidationError, self.validator.check_port, {'port': 5901}, 5900)
