# virtio-lab: attaching /dev/vda, sourced by /init (at boot) and by `virtio-lab-disk`
# (on request, when the kernel command line says virtio_lab.disk=late). Defines functions
# only; `say` and PATH come from the caller.

ext_magic() { # prints 53ef when an ext2/3/4 superblock is at byte 1024
    dd if="$1" bs=1024 skip=1 count=1 2>/dev/null | dd bs=1 skip=56 count=2 2>/dev/null | xxd -p
}

disk_mounted() { # true when /dev/vda is mounted at /mnt/disk
    while read -r dev dir _; do
        [ "$dev" = /dev/vda ] && [ "$dir" = /mnt/disk ] && return 0
    done < /proc/mounts
    return 1
}

# /dev/vda gets ext4 only when blank (first 64 KiB all zeros), then is mounted at /mnt/disk.
# A disk the lab created arrives formatted already (a host-side template): formatting here is
# the fallback for other blank images. Status 0 when the disk ends up mounted.
disk_attach() {
    if [ ! -b /dev/vda ]; then
        say "no /dev/vda"
        return 1
    fi
    if disk_mounted; then
        say "/dev/vda is already mounted at /mnt/disk"
        return 0
    fi
    read -r sectors < /sys/block/vda/size
    read -r ro < /sys/block/vda/ro
    [ "$ro" = 1 ] && mode=read-only || mode=read-write
    fs= what="no ext2/3/4 filesystem"
    [ "$(ext_magic /dev/vda)" = 53ef ] && fs=ext what="ext2/3/4 filesystem"
    say "/dev/vda: $((sectors / 2048)) MiB, $mode, $what"
    if [ -z "$fs" ]; then
        if [ "$(dd if=/dev/vda bs=4096 count=16 2>/dev/null | tr -d '\000' | wc -c)" != 0 ]; then
            say "/dev/vda holds other data: not formatting it (run mkfs.ext4 /dev/vda to do so)"
        elif [ "$ro" = 1 ]; then
            say "/dev/vda is blank but read-only: not formatting it"
        else
            say "formatting /dev/vda as ext4..."
            # UUID and hash seed from the kernel (mke2fs would block in getrandom() until
            # the entropy pool is ready: seconds in an emulator without a virtio-rng).
            # Inode tables zeroed now, not by a background thread later (steady benchmarks);
            # the journal is not pre-zeroed (the disk was blank; jbd2 checksums it anyway).
            read -r uuid < /proc/sys/kernel/random/uuid
            read -r seed < /proc/sys/kernel/random/uuid
            mkfs.ext4 -q -F -L virtio-lab -U "$uuid" \
                -E "hash_seed=$seed,lazy_itable_init=0,lazy_journal_init=1,nodiscard" /dev/vda &&
                fs=ext || say "mkfs.ext4 /dev/vda failed"
        fi
    fi
    [ -n "$fs" ] || return 1
    if [ "$ro" = 1 ]; then
        # A journal that needs replaying cannot be replayed on a read-only device.
        mount -t ext4 -o ro /dev/vda /mnt/disk 2>/dev/null ||
            mount -t ext4 -o ro,noload /dev/vda /mnt/disk
    else
        mount -t ext4 /dev/vda /mnt/disk
    fi || { say "mounting /dev/vda failed"; return 1; }
    say "/dev/vda mounted at /mnt/disk ($mode)"
}
