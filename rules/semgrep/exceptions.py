# Test cases for exceptions.yaml
import os

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def swallowed(path, items, instance):
    try:
        instance.host = path.split(':')[0]
    except Exception:
        # ruleid: broad-exception-swallowed
        pass

    try:
        instance.save()
    except:  # noqa: E722
        # ruleid: broad-exception-swallowed
        pass

    for item in items:
        try:
            item.migrate(instance)
        except BaseException:
            # ruleid: broad-exception-swallowed
            continue
        finally:
            item.release()

    try:
        value = int(path)
    except ValueError:
        raise
    except (TypeError, Exception) as e:
        # ruleid: broad-exception-swallowed
        return
    else:
        return value

    try:
        return os.stat(path)
    except Exception:
        # A comment explaining why does not make it less broad.
        # ruleid: broad-exception-swallowed
        return None


def fine(path, instance):
    try:
        os.unlink(path)
    except OSError:
        # ok: broad-exception-swallowed
        pass

    try:
        os.unlink(path)
    except FileNotFoundError:
        # ok: broad-exception-swallowed
        return

    try:
        os.unlink(path)
    except Exception:
        # ok: broad-exception-swallowed
        LOG.exception('Failed to remove %s', path, instance=instance)

    try:
        os.unlink(path)
    except Exception as e:
        LOG.warning('Failed to remove %s: %s', path, e)
        # ok: broad-exception-swallowed
        pass

    try:
        os.unlink(path)
    except Exception:
        # ok: broad-exception-swallowed
        raise

    try:
        return os.stat(path)
    except Exception:
        # ok: broad-exception-swallowed
        return False

    try:
        # ok: broad-exception-swallowed
        pass
    finally:
        os.sync()


def best_effort(dev, path, target, target_del, instance):
    # Best-effort cleanup: a failure must not stop the rest of the teardown.
    try:
        dev.abort_job()
    except Exception:
        # ok: broad-exception-swallowed
        pass

    try:
        self.rpcserver.stop()
        self.rpcserver.wait()
    except Exception:
        # ok: broad-exception-swallowed
        pass

    for i in range(2):
        try:
            os.rename(target, target_del)
            break
        except Exception:
            # ok: broad-exception-swallowed
            pass

    try:
        if os.path.exists(path):
            shutil.rmtree(path)
    except Exception:
        # ok: broad-exception-swallowed
        pass

    try:
        req_ip = attachment['fixed_ips'][0]['ip_address']
    except Exception:
        # ruleid: broad-exception-swallowed
        pass

    try:
        doc = etree.fromstring(self._domain.XMLDesc(flags))
    except Exception:
        # ruleid: broad-exception-swallowed
        return None


def revert(inst_base, inst_base_resize, target, target_del):
    try:
        if os.path.exists(inst_base_resize):
            utils.execute('rm', '-rf', inst_base)
            utils.execute('mv', inst_base_resize, inst_base)
    except Exception:
        # ok: broad-exception-swallowed
        pass
