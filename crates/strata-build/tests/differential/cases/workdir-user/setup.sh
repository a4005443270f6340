printf 'root:x:0:0:root:/root:/bin/sh\nusr:x:1234:1234::/home/usr:/bin/sh\n' > passwd
printf 'root:x:0:\nusr:x:1234:\ngrp:x:777:\n' > group
printf '{}\n' > package.json
