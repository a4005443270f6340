printf "hello\n" > a.txt; mkdir -p d/e; echo x > d/e/f; echo y > d/g
