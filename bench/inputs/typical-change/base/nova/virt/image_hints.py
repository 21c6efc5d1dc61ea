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

"""Image properties that drive how a guest is built."""

import collections

from oslo_log import log as logging
from oslo_utils import strutils

from nova import exception


LOG = logging.getLogger(__name__)

ImageHints = collections.namedtuple('ImageHints', ['machine_type', 'disk_bus', 'vif_model', 'secure_boot'])

_BOOL_PROPS = ('os_secure_boot', 'hw_vif_multiqueue_enabled', 'hw_qemu_guest_agent')


def _bool(value):
    return strutils.bool_from_string(value, strict=True)


def image_hints(properties):
    """Extract the guest-building hints from a dict of image properties."""
    for name in _BOOL_PROPS:
        if name in properties:
            try:
                _bool(properties[name])
            except ValueError:
                raise exception.InvalidImagePropertyValue(name=name, value=properties[name])
    return ImageHints(
        machine_type=properties.get('hw_machine_type'),
        disk_bus=properties.get('hw_disk_bus'),
        vif_model=properties.get('hw_vif_model'),
        secure_boot=_bool(properties.get('os_secure_boot', 'false')),
    )
