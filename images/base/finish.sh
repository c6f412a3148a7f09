#!/bin/sh
# coderun-image-finish: the last command of every RUN that installs packages in a coderun
# image (see images/base/Dockerfile). It leaves no apt lists or caches, no logs, nothing in
# /tmp (the build's smoke tests write there; at run time /tmp is an empty emptyDir anyway),
# and removes the setuid and setgid bits of every program: nothing in a sandbox needs them,
# and the program must have no way to change its identity, even where no_new_privs were not
# set.
set -eu
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
	/var/cache/debconf/*-old /var/lib/dpkg/*-old /tmp/* /tmp/.[!.]* /root/.cache
find / -xdev -type f -perm /6000 -exec chmod a-s {} +
