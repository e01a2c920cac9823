#!/usr/bin/env bash
# Builds the virtio-lab guest image (SeaBIOS + Linux bzImage + uncompressed initramfs)
# from pinned Debian bookworm packages, and installs it with a manifest into public/guest/.
#
# Runs as root on Debian 12. Idempotent: a second run reuses guest/build/ and only
# redoes what changed. Versions: guest/versions.txt. See guest/README.md.
#
#   guest/build.sh            # everything
#   JOBS=3 guest/build.sh     # parallel make jobs (default: nproc + 1)
set -euo pipefail

GUEST=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$GUEST")
BUILD=$GUEST/build
OUT=$ROOT/public/guest
JOBS=${JOBS:-$(($(nproc) + 1))}
CMDLINE="console=ttyS0 tsc=reliable loglevel=7 init_on_free=1"
MEMORY_MIB=128

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }
# quiet LOGNAME CMD...: run CMD with its output in build/logs/LOGNAME.log, shown on failure.
quiet() {
    local name=$1; shift
    mkdir -p "$BUILD/logs"
    "$@" > "$BUILD/logs/$name.log" 2>&1 || { tail -40 "$BUILD/logs/$name.log" >&2; die "$name failed (see guest/build/logs/$name.log)"; }
}

[ "$(id -u)" = 0 ] || die "run as root (it installs Debian packages)"
[ -r /etc/debian_version ] && grep -q '^12\.' /etc/debian_version ||
    echo "build.sh: warning: not Debian 12 ($(cat /etc/debian_version 2>/dev/null))" >&2

# ---------------------------------------------------------------- pins
declare -A DEB=() DEV=() SRC=() TOOL=()
EPOCH=
while read -r kind name version _; do
    case "$kind" in
        ''|'#'*) ;;
        deb) DEB[$name]=$version ;;
        dev) DEV[$name]=$version ;;
        src) SRC[$name]=$version ;;
        tool) TOOL[$name]=$version ;;
        epoch) EPOCH=$name ;;
        *) die "versions.txt: unknown kind '$kind'" ;;
    esac
done < "$GUEST/versions.txt"
[ -n "$EPOCH" ] || die "versions.txt: no epoch"
export SOURCE_DATE_EPOCH=$EPOCH

# ---------------------------------------------------------------- packages
log "apt: i386 architecture, bookworm deb-src entry, build dependencies"
export DEBIAN_FRONTEND=noninteractive
need_update=0
if ! dpkg --print-foreign-architectures | grep -qx i386; then
    dpkg --add-architecture i386
    need_update=1
fi
SRCLIST=/etc/apt/sources.list.d/virtio-lab-src.sources
if [ ! -e "$SRCLIST" ]; then
    cat > "$SRCLIST" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    need_update=1
fi
if [ "$need_update" = 1 ] || [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_source_Sources*' -mmin -1440 2>/dev/null)" ]; then
    # A stale/mid-sync index for some other suite must not stop us: the pins decide.
    apt-get update || echo "build.sh: warning: apt-get update reported errors (continuing)" >&2
fi

installed_version() { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null |
    sed -n 's/^install ok installed //p'; }

pkgs=()
for p in "${!DEV[@]}"; do
    [ "$(installed_version "$p")" = "${DEV[$p]}" ] || pkgs+=("$p=${DEV[$p]}")
done
for p in bc bison flex libelf-dev libssl-dev lz4 cpio make gcc gcc-multilib dpkg-dev xz-utils \
         file python3; do
    [ -n "$(installed_version "$p")" ] || pkgs+=("$p")
done
if [ ${#pkgs[@]} -gt 0 ]; then
    apt-get install -y --no-install-recommends "${pkgs[@]}"
fi

drift=()
for p in "${!DEV[@]}" "${!TOOL[@]}"; do
    want=${DEV[$p]:-${TOOL[$p]:-}}
    have=$(installed_version "$p")
    [ "$have" = "$want" ] || drift+=("$p: pinned $want, installed ${have:-none}")
done
if [ ${#drift[@]} -gt 0 ]; then
    printf 'build.sh: version drift:\n' >&2; printf '  %s\n' "${drift[@]}" >&2
    [ "${VIRTIO_LAB_ALLOW_DRIFT:-0}" = 1 ] || die "versions differ from guest/versions.txt (VIRTIO_LAB_ALLOW_DRIFT=1 to go on)"
fi

# Binary inputs: downloaded and unpacked, not installed (busybox-static:i386 would
# replace the host's busybox; linux-source is only a tarball).
mkdir -p "$BUILD/debs" "$BUILD/src"
deb_dir() { echo "$BUILD/debs/${1%%:*}"; }
for p in "${!DEB[@]}"; do
    v=${DEB[$p]}
    d=$(deb_dir "$p")
    if [ -f "$d/.version" ] && [ "$(cat "$d/.version")" = "$v" ]; then continue; fi
    log "download $p=$v"
    rm -rf "$d" && mkdir -p "$d"
    (cd "$d" && quiet "download-${p%%:*}" apt-get download "$p=$v")
    f=$(ls "$d"/*.deb 2>/dev/null | head -1)
    [ -n "$f" ] || die "apt-get download $p=$v failed (is that version still in the archive?)"
    [ "$(dpkg-deb -f "$f" Version)" = "$v" ] || die "$f is not version $v"
    dpkg-deb -x "$f" "$d/root"
    echo "$v" > "$d/.version"
done

for p in "${!SRC[@]}"; do
    v=${SRC[$p]}
    up=${v#*:}; up=${up%-*}
    if [ -f "$BUILD/src/$p-$up/.version" ] && [ "$(cat "$BUILD/src/$p-$up/.version")" = "$v" ]; then
        continue
    fi
    log "apt-get source $p=$v"
    rm -rf "$BUILD/src/$p-$up" "$BUILD/src/${p}_"*
    (cd "$BUILD/src" && quiet "source-$p" apt-get source "$p=$v")
    [ -d "$BUILD/src/$p-$up" ] || die "apt-get source $p=$v failed"
    echo "$v" > "$BUILD/src/$p-$up/.version"
done

# ---------------------------------------------------------------- kernel
# The source tree stays pristine; the config is resolved in one scratch object directory
# and the kernel is built in another (make O=...), so an unchanged config keeps the build
# incremental.
KV=${DEB[linux-source-6.1]}
KSRC=$BUILD/linux-source-6.1
KOBJ=$BUILD/linux-obj
KCFGDIR=$BUILD/linux-config
if [ ! -f "$KSRC/.version-deb" ] || [ "$(cat "$KSRC/.version-deb")" != "$KV" ] || [ -e "$KSRC/.config" ]; then
    log "unpack linux-source-6.1 $KV"
    rm -rf "$KSRC" "$KOBJ"
    tar -C "$BUILD" -xf "$(deb_dir linux-source-6.1)/root/usr/src/linux-source-6.1.tar.xz"
    echo "$KV" > "$KSRC/.version-deb"
fi

log "kernel config: tinyconfig + guest/kernel.fragment"
export ARCH=i386 KBUILD_BUILD_USER=virtio-lab KBUILD_BUILD_HOST=debian-bookworm KBUILD_BUILD_VERSION=1
export KBUILD_BUILD_TIMESTAMP="$(date -u -d "@$EPOCH" '+%Y-%m-%d')"
rm -rf "$KCFGDIR" && mkdir -p "$KCFGDIR" "$KOBJ"
quiet kconfig-tiny make -C "$KSRC" O="$KCFGDIR" tinyconfig
(cd "$KSRC" && quiet kconfig-merge scripts/kconfig/merge_config.sh -m -O "$KCFGDIR" "$KCFGDIR/.config" "$GUEST/kernel.fragment")
quiet kconfig-olddefconfig make -C "$KSRC" O="$KCFGDIR" olddefconfig
KCFG=$KCFGDIR/.config
bad=0
while IFS= read -r line; do
    case "$line" in
        CONFIG_*=*)
            grep -qxF "$line" "$KCFG" || { echo "  wanted $line, got: $(grep "^${line%%=*}=" "$KCFG" || echo unset)" >&2; bad=1; } ;;
        "# CONFIG_"*" is not set")
            sym=${line#\# }; sym=${sym%% *}
            if grep -q "^$sym=" "$KCFG"; then echo "  wanted $sym off, got: $(grep "^$sym=" "$KCFG")" >&2; bad=1; fi ;;
    esac
done < "$GUEST/kernel.fragment"
[ "$bad" = 0 ] || die "kernel.fragment did not survive olddefconfig (dependencies?)"
cmp -s "$KCFG" "$KOBJ/.config" || cp "$KCFG" "$KOBJ/.config"
grep -v '^# Linux/x86 .* Kernel Configuration$' "$KCFG" > "$GUEST/kernel.config.tmp"
mv "$GUEST/kernel.config.tmp" "$GUEST/kernel.config"

log "kernel: make -j$JOBS bzImage"
quiet kernel make -C "$KSRC" O="$KOBJ" -j"$JOBS" bzImage
KERNEL_RELEASE=$(make -C "$KSRC" -s O="$KOBJ" kernelrelease)

# ---------------------------------------------------------------- fio (static i386)
FIO=$BUILD/src/fio-$(v=${SRC[fio]}; v=${v#*:}; echo "${v%-*}")
log "fio: static i386 build in $FIO"
# -ffile-prefix-map: no build paths in the debug info that feeds the build-id, so the
# stripped binaries do not depend on where guest/ is checked out.
MAPFLAG="-ffile-prefix-map=$BUILD=/build"
FIO_CONF=(--extra-cflags="-m32 $MAPFLAG" --build-static --disable-native)
if [ ! -f "$FIO/config-host.mak" ] || [ "$(cat "$FIO/.virtio-lab-configure" 2>/dev/null)" != "${FIO_CONF[*]}" ]; then
    make -C "$FIO" -s clean >/dev/null 2>&1 || true
    (cd "$FIO" && quiet fio-configure ./configure "${FIO_CONF[@]}")
    echo "${FIO_CONF[*]}" > "$FIO/.virtio-lab-configure"
fi
grep -q '^CONFIG_LIBAIO=y' "$FIO/config-host.mak" ||
    die "fio configure did not find libaio (libaio-dev:i386 missing?)"
quiet fio-make make -C "$FIO" -j"$JOBS" LDFLAGS="-m32 -static" fio
[ -x "$FIO/fio" ] || die "fio build failed"

# ---------------------------------------------------------------- e2fsprogs (static i386)
E2=$BUILD/src/e2fsprogs-$(v=${SRC[e2fsprogs]}; v=${v#*:}; echo "${v%-*}")
E2B=$BUILD/e2fsprogs-i386
log "e2fsprogs: static i386 mke2fs in $E2B"
mkdir -p "$E2B"
E2_CONF=(CC="gcc -m32" CFLAGS="-g -O2 $MAPFLAG" LDFLAGS="-static"
    --enable-libuuid --enable-libblkid --disable-nls --disable-fuse2fs
    --disable-debugfs --disable-imager --disable-resizer --disable-defrag
    --disable-uuidd --disable-e2initrd-helper --disable-tdb --disable-bmap-stats
    --disable-backtrace --disable-elf-shlibs)
if [ ! -f "$E2B/config.status" ] || [ "$(cat "$E2B/.virtio-lab-configure" 2>/dev/null)" != "${E2_CONF[*]}" ]; then
    rm -rf "$E2B" && mkdir -p "$E2B"
    (cd "$E2B" && quiet e2fsprogs-configure "$E2/configure" "${E2_CONF[@]}")
    echo "${E2_CONF[*]}" > "$E2B/.virtio-lab-configure"
fi
quiet e2fsprogs-libs make -C "$E2B" -j"$JOBS" libs
quiet e2fsprogs-misc make -C "$E2B/misc" -j"$JOBS" mke2fs mke2fs.conf

# ---------------------------------------------------------------- initramfs
log "initramfs"
BB=$(deb_dir busybox-static:i386)/root/bin/busybox
[ -x "$BB" ] || die "busybox-static not unpacked"
RFS=$BUILD/initramfs
rm -rf "$RFS"
mkdir -p "$RFS"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,mnt/disk,var,etc}
ln -s ../run "$RFS/var/run"
ln -s ../tmp "$RFS/var/tmp"
cp -a "$GUEST/rootfs/." "$RFS/"
rm -f "$RFS/root/.keep"
install -m755 "$BB" "$RFS/bin/busybox"
install -m755 -s "$FIO/fio" "$RFS/usr/bin/fio"
install -m755 -s "$E2B/misc/mke2fs" "$RFS/sbin/mke2fs"
install -m644 "$E2B/misc/mke2fs.conf" "$RFS/etc/mke2fs.conf"
# (e2fsck and blkid are left out: 2.7 MB more to unpack at every boot, ~0.2 s.)
for t in ext2 ext3 ext4; do ln -s mke2fs "$RFS/sbin/mkfs.$t"; done
# Applet links, from the list busybox itself prints (the applet list of this build);
# never over our own files (/init, mke2fs, ...).
if "$BB" true 2>/dev/null; then
    applets=$("$BB" --list-full)
else
    die "cannot run the i386 busybox on this host to list its applets"
fi
for a in $applets; do
    case "$a" in linuxrc) continue ;; esac
    [ -e "$RFS/$a" ] || [ -L "$RFS/$a" ] && continue
    up=$(dirname "$a" | sed 's:[^/]\+:..:g')
    ln -s "$up/bin/busybox" "$RFS/$a"
done
chmod 700 "$RFS/root"
find "$RFS" -exec touch -h -d "@$EPOCH" {} +
(cd "$RFS" && find . -mindepth 1 | LC_ALL=C sort |
    cpio --quiet -o -H newc -R 0:0 --reproducible > "$BUILD/initrd.cpio")

# ---------------------------------------------------------------- ext4 disk templates
# New lab disks are created already formatted: the page's disk store writes one of these
# templates into a zero-filled image of the same size, so the guest never runs mkfs.ext4 for
# them (1–3 s of the first boot). Made with the guest's own mke2fs and mke2fs.conf, and the
# options /init's fallback format uses, plus:
#   assume_storage_prezeroed  the disk file is all zeros: inode tables and journal are not
#                             written, and the groups are marked zeroed (no lazy init later)
#   metadata_csum_seed        checksums seeded from s_checksum_seed, not the UUID, so the
#                             store gives every disk its own UUID by patching superblocks only
# Fixed UUID, hash seed and time (E2FSPROGS_FAKE_TIME): the templates are reproducible. Only
# non-zero 1 KiB blocks are kept: "runs" lists them as "FIRST+COUNT" in 1 KiB blocks, and
# "deflateRaw" holds their bytes, concatenated (sha256 of those bytes): 2–9 KB a size.
DISK_TEMPLATE_MIB="32 64 128 256 512 1024 2048 4096"
TEMPLATE_UUID=5669c7e1-0000-4000-8000-000000000001
TEMPLATE_HASH_SEED=5669c7e1-0000-4000-8000-000000000002
log "ext4 disk templates: $DISK_TEMPLATE_MIB MiB"
TPL=$BUILD/disk-templates
rm -rf "$TPL" && mkdir -p "$TPL"
for mib in $DISK_TEMPLATE_MIB; do
    img=$TPL/$mib.img
    truncate -s "${mib}M" "$img"
    MKE2FS_CONFIG=$E2B/misc/mke2fs.conf E2FSPROGS_FAKE_TIME=$EPOCH \
        quiet "mke2fs-template-$mib" "$E2B/misc/mke2fs" -q -F -t ext4 -L virtio-lab -O metadata_csum_seed \
        -U "$TEMPLATE_UUID" -E "hash_seed=$TEMPLATE_HASH_SEED,assume_storage_prezeroed=1,nodiscard" "$img"
    if command -v e2fsck >/dev/null; then
        quiet "e2fsck-template-$mib" e2fsck -fn "$img"
    fi
done
python3 - "$TPL" "$TEMPLATE_UUID" $DISK_TEMPLATE_MIB > "$TPL/templates.json" <<'PY'
import base64, hashlib, json, sys, zlib
tpl, uuid, sizes = sys.argv[1], sys.argv[2], sys.argv[3:]
BLOCK = 1024
out = []
for mib in sizes:
    data = open(f"{tpl}/{mib}.img", "rb").read()
    zero = bytes(BLOCK)
    runs, kept, i, n = [], [], 0, len(data) // BLOCK
    while i < n:
        if data[i * BLOCK:(i + 1) * BLOCK] == zero:
            i += 1
            continue
        j = i
        while j < n and data[j * BLOCK:(j + 1) * BLOCK] != zero:
            j += 1
        runs.append(f"{i}+{j - i}")
        kept.append(data[i * BLOCK:j * BLOCK])
        i = j
    raw = b"".join(kept)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out.append({"sizeMiB": int(mib), "uuid": uuid, "runs": " ".join(runs),
                "sha256": hashlib.sha256(raw).hexdigest(),
                "deflateRaw": base64.b64encode(c.compress(raw) + c.flush()).decode()})
json.dump(out, sys.stdout, separators=(",", ":"))
PY

# ---------------------------------------------------------------- install + manifest
log "install into public/guest"
mkdir -p "$OUT"
BIOS_SRC=$(deb_dir seabios)/root/usr/share/seabios/bios.bin
install -m644 "$BIOS_SRC" "$OUT/bios.bin"
install -m644 "$KOBJ/arch/x86/boot/bzImage" "$OUT/bzImage"
install -m644 "$BUILD/initrd.cpio" "$OUT/initrd.cpio"
for f in "$OUT"/*; do
    case "$(basename "$f")" in bios.bin|bzImage|initrd.cpio|manifest.json) ;;
        *) echo "removing stale $f"; rm -f "$f" ;;
    esac
done

file_entry() { # role file package version
    printf '    {"role": "%s", "file": "%s", "sha256": "%s", "size": %s, "source": {"package": "%s", "version": "%s"}' \
        "$1" "$2" "$(sha256sum "$OUT/$2" | cut -d' ' -f1)" "$(stat -c %s "$OUT/$2")" "$3" "$4"
}
{
    echo '{'
    echo "  \"cmdline\": \"$CMDLINE\","
    echo "  \"memoryMiB\": $MEMORY_MIB,"
    echo "  \"kernelRelease\": \"$KERNEL_RELEASE\","
    echo '  "files": ['
    file_entry bios bios.bin seabios "${DEB[seabios]}"; echo '},'
    file_entry kernel bzImage linux-source-6.1 "${DEB[linux-source-6.1]}"
    echo ', "config": "guest/kernel.config"},'
    file_entry initrd initrd.cpio virtio-lab-initramfs "$(date -u -d "@$EPOCH" +%Y%m%d)"
    echo ','
    echo '      "format": "newc cpio, uncompressed",'
    echo '      "contents": ['
    echo "        {\"package\": \"busybox\", \"version\": \"${DEB[busybox-static:i386]}\", \"binary\": \"busybox-static:i386\", \"paths\": [\"/bin/busybox\"]},"
    echo "        {\"package\": \"fio\", \"version\": \"${SRC[fio]}\", \"built\": \"static i386, libaio engine\", \"paths\": [\"/usr/bin/fio\"]},"
    echo "        {\"package\": \"e2fsprogs\", \"version\": \"${SRC[e2fsprogs]}\", \"built\": \"static i386\", \"paths\": [\"/sbin/mke2fs\", \"/sbin/mkfs.ext4\", \"/etc/mke2fs.conf\"]},"
    echo "        {\"package\": \"glibc\", \"version\": \"${DEV[libc6-dev-i386]}\", \"binary\": \"libc6-dev-i386\", \"note\": \"statically linked into fio and e2fsprogs\"},"
    echo "        {\"package\": \"libaio\", \"version\": \"${DEV[libaio-dev:i386]}\", \"binary\": \"libaio-dev:i386\", \"note\": \"statically linked into fio\"},"
    echo '        {"package": "virtio-lab", "paths": ["/init", "/etc", "/usr/share/udhcpc/default.script", "/usr/sbin/virtio-lab-agent", "/usr/sbin/virtio-lab-disk", "/usr/lib/virtio-lab/disk.sh"], "note": "guest/rootfs/"}'
    echo '      ]}'
    echo '  ],'
    echo "  \"diskTemplates\": $(cat "$TPL/templates.json"),"
    echo "  \"toolchain\": {\"gcc-12\": \"$(installed_version gcc-12)\", \"binutils\": \"$(installed_version binutils)\"}"
    echo '}'
} > "$OUT/manifest.json.tmp"
python3 -m json.tool "$OUT/manifest.json.tmp" > "$OUT/manifest.json"
rm -f "$OUT/manifest.json.tmp"

log "done: kernel $KERNEL_RELEASE, cmdline \"$CMDLINE\""
for p in "${!DEB[@]}"; do echo "  deb  $p=${DEB[$p]}"; done
for p in "${!DEV[@]}"; do echo "  dev  $p=${DEV[$p]}"; done
for p in "${!SRC[@]}"; do echo "  src  $p=${SRC[$p]}"; done
ls -l "$OUT"
