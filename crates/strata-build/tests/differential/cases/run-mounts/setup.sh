mkdir -p sub; echo ctx > sub/f; echo no > sub/ignored; echo sub/ignored > .dockerignore
printf s3cret > ../secret-run-mounts
