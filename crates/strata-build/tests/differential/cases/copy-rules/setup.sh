mkdir -p src/sub; echo a > src/one.txt; echo bb > src/two.txt; echo c > src/sub/three
ln -s one.txt src/link; echo z > plain
