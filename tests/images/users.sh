#!/usr/bin/env bash
# The unprivileged users of the packed-image tests (tests/e2e/images.rs),
# made once on the test machine (run as root; idempotent; called by
# tests/deps.sh and by the tests themselves when the users are missing):
#
#   nc-subids    has a subordinate uid and gid range (65536 ids from
#                1500000000, below the 0x70000000 the root sandbox shifts
#                to), so it runs programs in a packed image through
#                newuidmap/newgidmap;
#   nc-nosubids  has none, so those programs are skipped with the reason.
set -euo pipefail
exec 9>/run/lock/nodecheck-test-users.lock
flock 9
start=1500000000
count=65536
for u in nc-subids nc-nosubids; do
  if ! getent passwd "$u" >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$u" 2>/dev/null ||
      getent passwd "$u" >/dev/null
  fi
done
touch /etc/subuid /etc/subgid
for f in /etc/subuid /etc/subgid; do
  grep -q "^nc-subids:" "$f" || echo "nc-subids:$start:$count" >>"$f"
  # A range given to nc-nosubids by some other tool would defeat its test.
  sed -i '/^nc-nosubids:/d' "$f"
done
