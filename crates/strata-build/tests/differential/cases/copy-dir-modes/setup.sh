mkdir -p d/sub; echo x > d/sub/f; chmod 700 d; chmod 750 d/sub
