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

import yaml

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


_ALLOWED_BUS = frozenset(['virtio', 'scsi', 'ide', 'usb', 'sata'])
_ALLOWED_VIF = frozenset(['virtio', 'e1000', 'e1000e', 'rtl8139', 'ne2k_pci', 'pcnet'])


def load_property_overrides(text):
    """Parse the operator's YAML document of per-image property overrides."""
    data = yaml.load(text, Loader=yaml.FullLoader) or {}
    if not isinstance(data, dict):
        raise exception.InvalidImagePropertyValue(name='overrides', value=type(data).__name__)
    overrides = {}
    for image_id, props in data.items():
        if not isinstance(props, dict):
            LOG.warning('Ignoring overrides for image %s: not a mapping', image_id)
            continue
        overrides[str(image_id)] = {str(k): str(v) for k, v in props.items()}
    return overrides


def merged_hints(image_id, properties, overrides):
    """Image hints after the operator's overrides for this image are applied."""
    merged = dict(properties)
    merged.update(overrides.get(image_id, {}))
    hints = image_hints(merged)
    if hints.disk_bus is not None and hints.disk_bus not in _ALLOWED_BUS:
        raise exception.InvalidImagePropertyValue(name='hw_disk_bus', value=hints.disk_bus)
    if hints.vif_model is not None and hints.vif_model not in _ALLOWED_VIF:
        raise exception.InvalidImagePropertyValue(name='hw_vif_model', value=hints.vif_model)
    return hints


def describe(hints):
    parts = []
    for name, value in hints._asdict().items():
        if value is not None:
            parts.append('%s=%s' % (name, value))
    return ', '.join(parts) or 'defaults'
