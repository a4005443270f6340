#!/usr/bin/env bash
# Differential check of word expansion and ARG/ENV scoping against Docker + BuildKit.
#
# Opt-in, not part of `cargo test`: needs /usr/bin/docker (BuildKit) and the `busybox:local`
# image that /work/shared/tools/anchors-up provides. For every case it builds
# `FROM busybox:local` + the case and prints what BuildKit made of it, one line per case:
#   word   <TAB> <word as written> <TAB> <json of the expanded value> | error: <message>
#   word-backtick: the same under `# escape=` with a backtick
#   scope  <TAB> <case name>       <TAB> <json of Env, Labels, WorkingDir, User, ExposedPorts, StopSignal> | error: …
#   history<TAB> <case name>       <TAB> <json of the created_by lines of the case's own steps>
#   run    <TAB> <case name>       <TAB> what a RUN of the case wrote to /v
# Usage: expand.sh [words|scope|all]   (DOCKER=/path/to/docker to use another binary)
set -euo pipefail

DOCKER=${DOCKER:-/usr/bin/docker}
export DOCKER_BUILDKIT=1
what=${1:-all}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0

# build <dir> <extra docker build args...>: builds $dir/Dockerfile, prints the image id or
# "error: <first useful line>".
build() {
    local dir=$1
    shift
    local id
    if id=$("$DOCKER" build -q "$@" "$dir" 2>"$dir/stderr"); then
        echo "$id"
    else
        local msg
        msg=$(grep -m1 -E 'failed to|error|Error' "$dir/stderr" | sed -e 's/^.*failed to create LLB definition: //' || true)
        echo "error: ${msg:-$(tail -n1 "$dir/stderr")}"
    fi
}

# The variables the word cases see (the same as the Rust table in src/expand_tests.rs, for the
# names Docker allows in ENV).
ENV_LINES=$(cat <<'EOF'
ENV PWD=/home SHELL=bash NULL= KOREAN=한국어 hi=hi path=/usr/local/bin file=archive.tar.gz
ENV url=http://example.com/a/b dollar=\$x star=a*b space="abc  def" leading="  ab c" trailing="ab c   "
EOF
)

# word_case <word> [directive line]
word_case() {
    local word=$1 directive=${2:-}
    local kind=word
    [ -n "$directive" ] && kind=word-backtick
    n=$((n + 1))
    local dir="$work/w$n"
    mkdir -p "$dir"
    {
        [ -n "$directive" ] && printf '%s\n' "$directive"
        printf 'FROM busybox:local\n%s\nLABEL v=%s\n' "$ENV_LINES" "$word"
    } >"$dir/Dockerfile"
    local id
    id=$(build "$dir")
    case $id in
    error:*) printf '%s\t%s\t%s\n' "$kind" "$word" "$id" ;;
    *) printf '%s\t%s\t%s\n' "$kind" "$word" "$("$DOCKER" inspect --format '{{json (index .Config.Labels "v")}}' "$id")" ;;
    esac
}

# The same under `# escape=` with a backtick (there `dollar` holds a literal backslash; no case uses it).
words_backtick() {
    while IFS= read -r w; do
        [ -n "$w" ] && word_case "$w" '# escape=`'
    done <<'EOF'
a`$PWD
a\$PWD
C:\path\x
"a`"b"
"a\b"
"a``b"
a``
a` b
${XXX:-a`}b}
"a\"
EOF
}

# Words in LABEL values: quotes, escapes and every `${}` form (older BuildKit rejects some forms;
# the error line says so).
words() {
    while IFS= read -r w; do
        [ -n "$w" ] && word_case "$w"
    done <<'EOF'
hello
he'll'o
he'llo
he\'llo
he\\'llo
abc\tdef
hello\\
"abc\tdef"
"abc\\tdef"
'abc\tdef'
'hello\'
"hello\"
"hel'lo"
"''"
'$PWD'
'\$PWD'
"he${PWD}"
"he'$PWD'"
"he\$PWD"
"he\\$PWD"
"a\"b"
"a\b"
"$PWD$SHELL"
$
a$
$.
he$.x
$/
he$PWD
he$pwd.
$PWD/bin
$PWD_x
${PWD}_x
é$PWD
안녕$KOREAN
${dollar}
he\$PWD
he\\$PWD
\${}
he$1x
$12x
${1:-bbb}
$@
$$
$$x
$#
${#}
$*x
$0
he${hi}xx
he${XX}
${aaa}}
${}
${{aaa}
${:}
he${.}
he${PWD
he${XXX:-000}xx
he${PWD:-000}xx
he${XXX:-$PWD}xx
he${XXX:-${PWD:-yyy}}xx
he${XXX:-${YYY:-yyy}}xx
${XXX-default}
${NULL-default}
${NULL:-default}
${aaa:-bbb}}
${aaa:-bbb
he${XXX:-\$PWD:}xx
he${XXX:-\${PWD}z}xx
${XXX:-a\}b}
${XXX:-'a b'}
${XXX:-"$PWD"}
he${XXX:+${PWD}}xx
he${PWD:+${XXX}}xx
he${PWD:+${SHELL}}xx
he${PWD:+${PWD}:}xx
${NULL+alt}
${NULL:+alt}
he${XXX?}
he${XXX:?}
he${PWD:?}
he${NULL?}
he${NULL:?}
"${XXX:?need it}"
he${XXX:YYY}
he${PWD:=000}xx
${path#*/}
${path##*/}
${path%/*}
${path%%/*}
${file%.*}
${file%%.*}
${file#*.}
${file##*.}
${file#[a]}
${star#a\*}
${star%\*b}
${file:#x}
${file/tar/zip}
${file//a/A}
${file/.*/}
${url//\//_}
${file//?/x}
EOF
}

# scope_case <name> <build args...> -- <Dockerfile lines after FROM busybox:local...>
scope_case() {
    local name=$1
    shift
    local args=()
    while [ "$1" != -- ]; do
        args+=("$1")
        shift
    done
    shift
    n=$((n + 1))
    local dir="$work/s$n"
    mkdir -p "$dir"
    printf '%s\n' "$@" >"$dir/Dockerfile"
    local id
    id=$(build "$dir" "${args[@]}")
    case $id in
    error:*) printf 'scope\t%s\t%s\n' "$name" "$id" ;;
    *)
        printf 'scope\t%s\t%s\n' "$name" "$("$DOCKER" inspect --format \
            '{"Env":{{json .Config.Env}},"Labels":{{json .Config.Labels}},"WorkingDir":{{json .Config.WorkingDir}},"User":{{json .Config.User}},"ExposedPorts":{{json .Config.ExposedPorts}},"StopSignal":{{json .Config.StopSignal}}}' "$id")"
        printf 'history\t%s\t%s\n' "$name" "$("$DOCKER" history --no-trunc --format '{{json .CreatedBy}}' "$id" | head -n -1 | tac | paste -sd, -)"
        # Cases whose RUN writes /v show what the RUN environment held.
        if grep -q '>/v' "$dir/Dockerfile"; then
            printf 'run\t%s\t%s\n' "$name" "$("$DOCKER" run --rm --entrypoint cat "$id" /v)"
        fi
        ;;
    esac
}

scope() {
    scope_case global-arg-only-in-from -- 'ARG V=1' 'FROM busybox:local' 'LABEL v="[$V]"'
    scope_case global-arg-redeclared -- 'ARG V=1' 'FROM busybox:local' 'ARG V' 'LABEL v="[$V]"'
    scope_case global-arg-in-from --build-arg TAG=local -- 'ARG TAG=nope' 'FROM busybox:$TAG' 'LABEL v="[$TAG]"'
    scope_case stage-arg-default -- 'FROM busybox:local' 'ARG V=d' 'LABEL v="[$V]"'
    scope_case stage-arg-build-arg --build-arg V=cli -- 'FROM busybox:local' 'ARG V=d' 'LABEL v="[$V]"'
    scope_case stage-arg-no-default --build-arg V=cli -- 'FROM busybox:local' 'ARG V' 'LABEL v="[$V]"'
    scope_case arg-before-declaration --build-arg V=cli -- 'FROM busybox:local' 'LABEL a="[$V]"' 'ARG V' 'LABEL b="[$V]"'
    scope_case undeclared-build-arg --build-arg U=cli -- 'FROM busybox:local' 'LABEL v="[$U]"'
    scope_case env-after-arg --build-arg V=cli -- 'FROM busybox:local' 'ARG V' 'ENV V=env' 'LABEL v="[$V]"'
    scope_case env-before-arg --build-arg V=cli -- 'FROM busybox:local' 'ENV V=env' 'ARG V' 'LABEL v="[$V]"' 'RUN echo "[$V]" >/v'
    scope_case env-before-arg-default -- 'FROM busybox:local' 'ENV V=env' 'ARG V=d' 'LABEL v="[$V]"'
    scope_case arg-default-uses-env -- 'FROM busybox:local' 'ENV E=e' 'ARG V=${E}x' 'LABEL v="[$V]"'
    scope_case arg-scope-ends-with-stage -- 'FROM busybox:local AS a' 'ARG V=1' 'FROM busybox:local' 'LABEL v="[$V]"'
    scope_case arg-inherited-from-stage -- 'FROM busybox:local AS a' 'ARG V=1' 'ENV E=2' 'FROM a' 'LABEL v="[$V][$E]"'
    scope_case proxy-arg-undeclared --build-arg HTTP_PROXY=http://p:3128 -- 'FROM busybox:local' 'LABEL v="[$HTTP_PROXY]"' 'RUN echo "[$HTTP_PROXY]" >/v'
    scope_case proxy-arg-declared --build-arg HTTP_PROXY=http://p:3128 -- 'FROM busybox:local' 'ARG HTTP_PROXY' 'LABEL v="[$HTTP_PROXY]"' 'RUN echo "[$HTTP_PROXY]" >/v'
    scope_case platform-arg-undeclared -- 'FROM busybox:local' 'LABEL v="[$TARGETARCH]"'
    scope_case platform-arg-declared -- 'FROM busybox:local' 'ARG TARGETARCH' 'ARG TARGETPLATFORM' 'ARG BUILDOS' 'LABEL v="[$TARGETARCH][$TARGETPLATFORM][$BUILDOS]"'
    scope_case platform-arg-in-from -- 'FROM busybox:${TARGETARCH:+local}' 'LABEL v="[$TARGETARCH]"'
    scope_case targetstage-arg --target t -- 'FROM busybox:local AS t' 'ARG TARGETSTAGE' 'LABEL v="[$TARGETSTAGE]"'
    scope_case run-history-args --build-arg A=1 -- 'FROM busybox:local' 'ARG A' 'ARG B=2' 'ENV C=3' 'RUN echo "[$A][$B][$C]" >/v'
    scope_case run-sees-global-arg -- 'ARG G=1' 'FROM busybox:local' 'RUN echo "[$G]" >/v'
    scope_case run-sees-redeclared-global-arg -- 'ARG G=1' 'FROM busybox:local' 'ARG G' 'RUN echo "[$G]" >/v'
    scope_case env-workdir-user -- 'FROM busybox:local' 'ENV D=/data U=nobody' 'WORKDIR $D' 'WORKDIR sub' 'USER ${U}:${G:-100}'
    scope_case env-multi -- 'FROM busybox:local' 'ENV A=1 B=$A' 'ENV C=${A}${B}' 'LABEL v="[$A][$B][$C]"'
    scope_case env-legacy-form -- 'FROM busybox:local' 'ENV A hello  world $HOME' 'LABEL v="[$A]"'
    scope_case label-key-expanded -- 'FROM busybox:local' 'ENV K=key' 'LABEL $K=v "${K}2"="a b"'
    scope_case expose-expanded -- 'FROM busybox:local' 'ENV P=80' 'ENV PS="90 91/udp"' 'EXPOSE $P ${P}1/udp $PS'
    scope_case stopsignal-expanded -- 'FROM busybox:local' 'ENV S=SIGINT' 'STOPSIGNAL $S'
    scope_case arg-key-expanded -- 'FROM busybox:local' 'ENV N=NAME' 'ARG $N=v' 'LABEL v="[$NAME]"'
}

case $what in
words) words && words_backtick ;;
scope) scope ;;
all) words && words_backtick && scope ;;
*) echo "usage: $0 [words|scope|all]" >&2 && exit 2 ;;
esac
