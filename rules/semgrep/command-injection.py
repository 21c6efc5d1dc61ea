# Test cases for command-injection.yaml (run: semgrep --test rules/semgrep)
import os
import shlex
import subprocess

from oslo_concurrency import processutils

import nova.privsep
from nova import utils

CONF = None


# --- execute-unsanitized-command -------------------------------------------


def run_whatever(cmd):
    # ruleid: execute-unsanitized-command
    utils.execute(cmd)
    # ruleid: execute-unsanitized-command
    processutils.execute(cmd, run_as_root=True, check_exit_code=[0, 1])
    # ruleid: execute-unsanitized-command
    processutils.execute(*cmd)
    # ruleid: execute-unsanitized-command
    utils.execute(*cmd, run_as_root=True)
    # ruleid: execute-unsanitized-command
    processutils.execute(*cmd + ['--force'])
    # ruleid: execute-unsanitized-command
    processutils.trycmd(*cmd, discard_warnings=True)


def run_tool(path, size=None, extra=None):
    # ruleid: execute-unsanitized-command
    processutils.execute(*extra)


# --- execute-formatted-command ---------------------------------------------


def resize(path, size):
    # ruleid: execute-formatted-command
    utils.execute('qemu-img resize %s %s' % (path, size))
    # ruleid: execute-formatted-command
    processutils.execute(f'qemu-img info {path}', run_as_root=True)
    # ruleid: execute-formatted-command
    processutils.execute('ls ' + path)
    # ruleid: execute-formatted-command
    utils.execute('mount {} /mnt'.format(path), run_as_root=True)
    # ruleid: execute-formatted-command
    processutils.execute(CONF.tool_dir + '/bin/tool', path)
    # ok: execute-formatted-command
    processutils.execute(f'qemu-img', 'info', path)
    # ok: execute-formatted-command
    processutils.execute('qemu-img', 'resize', path, '%dG' % size)
    # ok: execute-unsanitized-command
    processutils.execute('e2label', path)


# --- execute-split-command-string ------------------------------------------


def mkfs(fs_label, target):
    mkfs_command = CONF.mkfs_command % {'fs_label': fs_label, 'target': target}
    # ruleid: execute-split-command-string
    processutils.execute(*mkfs_command.split())
    # ruleid: execute-split-command-string
    processutils.execute(*shlex.split(mkfs_command), run_as_root=True)
    # ruleid: execute-split-command-string
    subprocess.check_call(mkfs_command.split())


def probe(tool):
    # ruleid: execute-unsanitized-command
    utils.trycmd(CONF.mkisofs_cmd)
    # ok: execute-split-command-string
    processutils.execute('mkfs', '-t', 'ext4', '-L', 'ephemeral0', tool)


class Driver(object):
    def _run(self, cmd):
        # ruleid: execute-unsanitized-command
        self._execute(*cmd, run_as_root=True, root_helper=self._root_helper)


# OpenStack norm: a literal program name, every argument its own argv item.
def set_device_mtu(dev, mtu, image, size, backing_file, fmt):
    # ok: execute-unsanitized-command
    processutils.execute('ip', 'link', 'set', dev, 'mtu', mtu,
                         check_exit_code=[0, 2, 254])
    # ok: execute-unsanitized-command
    utils.execute('ip', 'link', 'set', dev, 'up', run_as_root=True)
    # ok: execute-unsanitized-command
    processutils.execute('qemu-img', 'resize', image, size)
    # ok: execute-unsanitized-command
    processutils.execute('lvcreate', '-L', '%db' % size, '-n', image)
    # ok: execute-unsanitized-command
    processutils.execute('qemu-img', 'rebase', '-b', backing_file,
                         '-F', fmt, image)
    # ok: execute-unsanitized-command
    processutils.execute('env', 'LANG=C', 'uptime')
    # ok: execute-unsanitized-command
    out, err = processutils.trycmd('fallocate', '-l', '1', image)
    # ok: execute-unsanitized-command
    utils.execute('tune2fs', '-O ^has_journal', dev)
    # ok: execute-unsanitized-command
    processutils.execute(CONF.mkisofs_cmd, '-o', image, '-quiet', '-J')


# A list built here, starting with a literal program name, then expanded.
def lvcreate(size, lv, vg, preallocated=None):
    cmd = ['lvcreate']
    if not preallocated:
        cmd.extend(['-L', '%db' % size])
    cmd.extend(['-n', lv, vg])
    # ok: execute-unsanitized-command
    processutils.execute(*cmd, attempts=3)


def create_tap_dev(dev, multiqueue=False):
    cmd = ('ip', 'tuntap', 'add', dev, 'mode', 'tap')
    if multiqueue:
        cmd = cmd + ('multi_queue', )
    # ok: execute-unsanitized-command
    processutils.execute(*cmd, check_exit_code=[0, 2, 254])


def ssh_execute(dest, *cmd, **kwargs):
    ssh_cmd = ['ssh', '-o', 'BatchMode=yes']
    ssh_cmd.append(dest)
    ssh_cmd.extend(cmd)
    # ok: execute-unsanitized-command
    return processutils.execute(*ssh_cmd, **kwargs)


def execute(*cmd, **kwargs):
    # A transparent wrapper: its callers are checked instead.
    # ok: execute-unsanitized-command
    return processutils.execute(*cmd, **kwargs)


def unrelated(session, select, task):
    # ok: execute-unsanitized-command
    session.execute(select)
    # ok: execute-unsanitized-command
    task.execute()


# --- execute-shell-injection ------------------------------------------------


def extract(path, cmd):
    # ruleid: execute-shell-injection
    processutils.execute('sh', '-c', 'tar xzf %s -C /tmp' % path)
    # ruleid: execute-shell-injection
    utils.execute('sudo', '/bin/bash', '-c', cmd, run_as_root=True)
    # ruleid: execute-shell-injection
    processutils.execute(cmd, shell=True)
    # ok: execute-unsanitized-command
    # ruleid: execute-shell-injection
    processutils.execute(cmd, shell=True, run_as_root=True)
    # ruleid: execute-shell-injection
    processutils.execute('ls -l %s' % path, shell=True)
    # ruleid: execute-shell-injection
    processutils.ssh_execute(ssh, 'rm -rf %s' % path)
    # ok: execute-shell-injection
    processutils.execute('sh', '-c', 'echo 1 > /proc/sys/vm/drop_caches')
    # ok: execute-shell-injection
    processutils.execute('ls -l /tmp', shell=True)
    # ok: execute-shell-injection
    processutils.ssh_execute(ssh, 'uptime')


# --- privsep-entrypoint-runs-caller-command ----------------------------------


@nova.privsep.sys_admin_pctxt.entrypoint
def privileged_execute(*cmd, **kwargs):
    # ruleid: privsep-entrypoint-runs-caller-command
    return processutils.execute(*cmd, **kwargs)


@nova.privsep.sys_admin_pctxt.entrypoint
def run_as_root(cmd):
    # ruleid: privsep-entrypoint-runs-caller-command
    subprocess.check_call(cmd)


@nova.privsep.sys_admin_pctxt.entrypoint
def mount(fstype, device, mountpoint, options):
    mount_cmd = ['mount']
    if fstype:
        mount_cmd.extend(['-t', fstype])
    mount_cmd.extend([device, mountpoint])
    # ok: privsep-entrypoint-runs-caller-command
    return processutils.execute(*mount_cmd)


@nova.privsep.sys_admin_pctxt.entrypoint
def umount(mountpoint):
    # ok: privsep-entrypoint-runs-caller-command
    processutils.execute('umount', mountpoint, attempts=3, delay_on_retry=True)


# --- subprocess-shell-injection ----------------------------------------------


def run_shell(cmd, path, host):
    # ruleid: subprocess-shell-injection
    subprocess.check_output(cmd, shell=True)
    # ruleid: subprocess-shell-injection
    subprocess.call('ping -c 1 %s' % host, shell=True)
    # ruleid: subprocess-shell-injection
    subprocess.Popen(f'rm -rf {path}', shell=True, stdout=subprocess.PIPE)
    # ruleid: subprocess-shell-injection
    subprocess.run(['cat ' + path], shell=True)
    # ruleid: subprocess-shell-injection
    subprocess.getoutput('ls ' + path)
    # ruleid: subprocess-shell-injection
    subprocess.run(['bash', '-c', 'du -sh %s' % path], check=True)
    # ok: subprocess-shell-injection
    subprocess.check_output('ls -l /tmp', shell=True)
    # ok: subprocess-shell-injection
    subprocess.check_output(['ls', '-l', path])
    # ok: subprocess-shell-injection
    subprocess.run(['ping', '-c', '1', host], check=True)
    # ok: subprocess-shell-injection
    subprocess.run(['sh', '-c', 'exec 2>&1; uptime'])
    # ok: subprocess-shell-injection
    subprocess.getoutput('uname -r')


# --- os-system-injection ---------------------------------------------------


def old_style(path, cmd):
    # ruleid: os-system-injection
    os.system('rm -f %s' % path)
    # ruleid: os-system-injection
    os.system(cmd)
    # ruleid: os-system-injection
    out = os.popen('cat ' + path).read()
    # ok: os-system-injection
    os.system('sync')
    # ok: os-system-injection
    out = os.popen('uname -a').read()
