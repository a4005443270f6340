# A Garage cluster on loopback, for the opt-in S3 tests and benchmarks (sourced, not run).
#
#   garage_binary               prints the garage binary: $GARAGE_BIN, or `cargo install garage
#                               --locked` (S3 server, SQLite metadata) cached in $GARAGE_ROOT
#                               (default ~/.cache/strata-garage; the first build is long: ~35 min
#                               on a busy 2-core machine)
#   garage_cluster DIR N BUCKET starts N nodes under DIR (replication factor N), creates BUCKET
#                               and a key allowed on it; sets garage_endpoint[1..N] (S3 URLs),
#                               garage_pid[1..N], and exports AWS_ACCESS_KEY_ID and
#                               AWS_SECRET_ACCESS_KEY. The caller kills garage_pid[@] when done.
# Garage's S3 region is "garage"; it serves path-style requests.

garage_binary() {
  if [ -n "${GARAGE_BIN:-}" ]; then echo "$GARAGE_BIN"; return; fi
  local root=${GARAGE_ROOT:-$HOME/.cache/strata-garage}
  if [ ! -x "$root/bin/garage" ]; then
    echo "building garage (cargo install garage: the S3 server with SQLite metadata only) into $root" >&2
    # Without LMDB, K2V and metrics, at opt-level 2: about a third of the default build's time
    CARGO_PROFILE_RELEASE_OPT_LEVEL=2 CARGO_PROFILE_RELEASE_DEBUG=0 \
      cargo install garage --locked --no-default-features --features bundled-libs,sqlite \
      --root "$root" >&2 || return 1
  fi
  echo "$root/bin/garage"
}

garage_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

declare -a garage_endpoint garage_pid
garage_cluster() {
  local dir=$1 nodes=$2 bucket=$3 garage secret i id
  garage=$(garage_binary) || return 1
  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  local -a s3_port rpc_port
  for i in $(seq 1 "$nodes"); do
    s3_port[$i]=$(garage_free_port); rpc_port[$i]=$(garage_free_port)
    mkdir -p "$dir/garage$i"
    cat >"$dir/garage$i/garage.toml" <<CONF
metadata_dir = "$dir/garage$i/meta"
data_dir = "$dir/garage$i/data"
db_engine = "sqlite"
replication_factor = $nodes
rpc_bind_addr = "127.0.0.1:${rpc_port[$i]}"
rpc_public_addr = "127.0.0.1:${rpc_port[$i]}"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:${s3_port[$i]}"
root_domain = ".s3.garage.localhost"
CONF
    "$garage" -c "$dir/garage$i/garage.toml" server >"$dir/garage$i/log" 2>&1 &
    garage_pid[$i]=$!
    garage_endpoint[$i]="http://127.0.0.1:${s3_port[$i]}"
  done
  local g=("$garage" -c "$dir/garage1/garage.toml")
  for _ in $(seq 60); do "${g[@]}" status >/dev/null 2>&1 && break; sleep 1; done
  "${g[@]}" status >/dev/null 2>&1 || { echo "garage did not start: $(tail -5 "$dir/garage1/log")" >&2; return 1; }
  for i in $(seq 2 "$nodes"); do
    id=$("$garage" -c "$dir/garage$i/garage.toml" node id -q 2>/dev/null)
    "${g[@]}" node connect "$id" >/dev/null
  done
  for i in $(seq 1 "$nodes"); do
    id=$("$garage" -c "$dir/garage$i/garage.toml" node id -q 2>/dev/null)
    "${g[@]}" layout assign "${id:0:16}" -z "dc$i" -c 1G >/dev/null
  done
  "${g[@]}" layout apply --version 1 >/dev/null
  local key key_id key_secret
  key=$("${g[@]}" json-api CreateKey '{"name":"strata"}')
  key_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["accessKeyId"])' "$key")
  key_secret=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["secretAccessKey"])' "$key")
  for _ in $(seq 30); do "${g[@]}" bucket create "$bucket" >/dev/null 2>&1 && break; sleep 1; done
  "${g[@]}" bucket allow --read --write --owner --key "$key_id" "$bucket" >/dev/null
  export AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$key_secret
}
