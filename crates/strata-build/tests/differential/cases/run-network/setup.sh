# RUN steps' network: their own namespace, the host's loopback services (the reference
# registry on 127.0.0.1:5000) out of reach by default. (Docker 20.10's built-in Dockerfile
# frontend has no RUN --network, so none/host are covered by the end-to-end tests only.)
true
