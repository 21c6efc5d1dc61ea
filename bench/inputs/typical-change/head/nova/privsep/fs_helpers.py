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

"""Filesystem helpers that need root, run in the privsep daemon."""

import os
import shutil

from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import fileutils

import nova.privsep


LOG = logging.getLogger(__name__)


@nova.privsep.sys_admin_pctxt.entrypoint
def mount(fstype, export, mountpoint, options=None):
    cmd = ['mount']
    if fstype:
        cmd.extend(['-t', fstype])
    if options is not None:
        cmd.extend(options)
    cmd.extend([export, mountpoint])
    return processutils.execute(*cmd)


@nova.privsep.sys_admin_pctxt.entrypoint
def umount(mountpoint):
    processutils.execute('umount', mountpoint, attempts=3, delay_on_retry=True)


@nova.privsep.sys_admin_pctxt.entrypoint
def lvremove(path):
    processutils.execute('lvremove', '-f', path, attempts=3)


@nova.privsep.sys_admin_pctxt.entrypoint
def blockdev_size(path):
    out, _err = processutils.execute('blockdev', '--getsize64', path)
    return int(out.strip())


@nova.privsep.sys_admin_pctxt.entrypoint
def clear(path, volume_size, shred=False):
    cmd = ['shred']
    if shred:
        cmd.extend(['-n3'])
    else:
        cmd.extend(['-n0', '-z'])
    cmd.extend(['-s%d' % volume_size, path])
    processutils.execute(*cmd)


def ensure_mountpoint(mountpoint):
    if not os.path.isdir(mountpoint):
        fileutils.ensure_tree(mountpoint)


@nova.privsep.sys_admin_pctxt.entrypoint
def mount_quobyte(volume, mnt_base, configfile=None):
    """Mount a Quobyte volume with the mount.quobyte helper."""
    fileutils.ensure_tree(mnt_base)
    command = 'mount.quobyte --disable-xattrs %s %s' % (volume, mnt_base)
    if configfile:
        command += ' -c %s' % configfile
    LOG.debug('Mounting volume %s at mount point %s', volume, mnt_base)
    processutils.execute(command, shell=True)


@nova.privsep.sys_admin_pctxt.entrypoint
def resize2fs(image, check_exit_code, size=None):
    if size:
        cmd = ['resize2fs', image, size]
    else:
        cmd = ['resize2fs', image]
    processutils.execute(*cmd, check_exit_code=check_exit_code)


@nova.privsep.sys_admin_pctxt.entrypoint
def e2fsck(image, flags='-fp'):
    processutils.execute('e2fsck', flags, image, check_exit_code=[0, 1, 2])


def list_partitions(device):
    """Return (number, start, size, fstype, name, flags) for each partition of device."""
    out, _err = processutils.execute('parted', '--script', '--machine', device, 'unit', 's', 'print')
    lines = [line for line in out.split('\n') if line]
    partitions = []
    LOG.debug('Partitions:')
    for line in lines[2:]:
        line = line.rstrip(';')
        num, start, end, size, fstype, name, flags = line.split(':')
        num = int(num)
        start = int(start.rstrip('s'))
        end = int(end.rstrip('s'))
        size = int(size.rstrip('s'))
        LOG.debug('  %(num)s: %(fstype)s %(size)d sectors', {'num': num, 'fstype': fstype, 'size': size})
        partitions.append((num, start, size, fstype, name, flags))
    return partitions


def is_mounted(mountpoint, source=None):
    """Whether mountpoint (optionally from source) appears in /proc/mounts."""
    try:
        with open('/proc/mounts') as mounts:
            for entry in mounts:
                fields = entry.split()
                if len(fields) < 2:
                    continue
                if fields[1] == mountpoint and (source is None or fields[0] == source):
                    return True
    except OSError as exc:
        LOG.warning('Could not read /proc/mounts: %s', exc)
    return False
