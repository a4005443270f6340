mkdir -p t/top/in; echo hi > t/top/in/f; echo yo > t/top/g; chmod 600 t/top/g
tar --owner=1000 --group=1000 --numeric-owner -C t -cf a.tar top; gzip -k a.tar
printf 'plain\n' > notar.gz; rm -rf t
