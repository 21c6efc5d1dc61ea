#!/bin/bash
# Test cases for shell.yaml

# --- curl-insecure-tls
# ruleid: curl-insecure-tls
curl -k https://tarballs.opendev.org/openstack/nova/nova-master.tar.gz -o nova.tgz
# ruleid: curl-insecure-tls
curl -sSL --insecure "$KEYSTONE_URL/v3" -o /dev/null
# ruleid: curl-insecure-tls
curl -sSLk "$IMAGE_URL" -o "$TOP_DIR/files/cirros.img"
# ruleid: curl-insecure-tls
sudo curl -k -o /usr/local/bin/tool https://example.net/tool
# ruleid: curl-insecure-tls
TOKEN=$(curl -k -s -X POST "$KEYSTONE_URL/v3/auth/tokens" -d @auth.json)
# ok: curl-insecure-tls
curl -sSL --cacert "$SSL_BUNDLE_FILE" https://keystone.internal/v3
# ok: curl-insecure-tls
curl -sS -o /dev/null -w "%{http_code}" "$NOVA_URL"
# ok: curl-insecure-tls
curl --retry 3 -L https://tarballs.opendev.org/x.tar.gz -o x.tgz

# --- wget-no-check-certificate
# ruleid: wget-no-check-certificate
wget --no-check-certificate -O cirros.img "$IMAGE_URL"
# ok: wget-no-check-certificate
wget -O cirros.img "$IMAGE_URL"

# --- git-ssl-verify-disabled
# ruleid: git-ssl-verify-disabled
git config --global http.sslVerify false
# ruleid: git-ssl-verify-disabled
git -c http.sslVerify=false clone https://opendev.org/openstack/nova
# ruleid: git-ssl-verify-disabled
export GIT_SSL_NO_VERIFY=1
# ok: git-ssl-verify-disabled
git config --global user.name "Zuul"

# --- chmod-world-writable
# ruleid: chmod-world-writable
chmod 777 /var/lib/nova/instances
# ruleid: chmod-world-writable
sudo chmod -R 0777 "$DATA_DIR"
# ruleid: chmod-world-writable
chmod a+rwx /opt/stack/logs
# ruleid: chmod-world-writable
chmod o+w "$NOVA_STATE_PATH"
# ruleid: chmod-world-writable
chmod 1777 /srv/shared
# ok: chmod-world-writable
chmod 0600 $HOME/.pgpass
# ok: chmod-world-writable
chmod 755 /usr/local/bin/tool
# ok: chmod-world-writable
chmod +x ./run_tests.sh
# ok: chmod-world-writable
chmod g+w /var/lib/nova

# --- curl-pipe-to-shell
# ruleid: curl-pipe-to-shell
curl -sSL https://bootstrap.pypa.io/get-pip.py | python3
# ruleid: curl-pipe-to-shell
curl -fsSL https://get.docker.com | sudo bash
# ruleid: curl-pipe-to-shell
wget -qO- https://install.example.net/setup.sh | sh -s -- --yes
# ok: curl-pipe-to-shell
curl -sSL https://tarballs.opendev.org/x.tar.gz | tar xz
# ok: curl-pipe-to-shell
curl -s "$NOVA_URL/servers" | python3 -m json.tool
