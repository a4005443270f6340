mkdir -p t/top/in; echo hi > t/top/in/f; echo yo > t/top/g; chmod 600 t/top/g
tar --owner=1000 --group=1000 --numeric-owner -C t -cf a.tar top
bzip2 -k a.tar; xz -k a.tar; rm -rf t a.tar
