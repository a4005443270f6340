mkdir -p pkg/package/lib && echo x > pkg/package/lib/a.js && echo '{}' > pkg/package/package.json
chmod 700 pkg/package/lib
tar --owner=501 --group=20 --numeric-owner -C pkg -czf pkg.tgz package && rm -rf pkg
