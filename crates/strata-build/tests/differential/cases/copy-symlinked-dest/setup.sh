mkdir -p root/usr/lib; printf k > root/usr/lib/keep; printf 1 > f; ln -s usr/lib root/lib
