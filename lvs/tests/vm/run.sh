#!/bin/sh
# Runs the vigil-lvs tests under a stock Debian kernel that has IPVS, in qemu.
#
# The development machines' kernel has no IPVS, so there the netlink tests print SKIPPED; here
# they run for real: the kernel tests in tests/it/kernel.rs create services in a private network
# namespace, read them back, cross-check with ipvsadm and compare every errno with FakeIpvs.
#
# Needs: qemu-system-x86_64 (TCG is enough, ~40 s), a Debian linux-image (/boot/vmlinuz-* is
# root-readable only), busybox-static, and optionally ipvsadm. Run from the workspace root:
#
#     lvs/tests/vm/run.sh            # KERNEL=/boot/vmlinuz-x.y MODDIR=/lib/modules/x.y to choose
#
# Exit status: that of the tests inside the VM (1 if the VM did not report one).
set -eu

KERNEL=${KERNEL:-$(ls /boot/vmlinuz-* | sort -V | tail -n 1)}
KVER=${KERNEL##*/vmlinuz-}
MODDIR=${MODDIR:-/lib/modules/$KVER}
BUSYBOX=${BUSYBOX:-$(command -v busybox)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
root=$work/root
mkdir -p "$root/bin" "$root/sbin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/mods"

# Test binaries, as cargo built them.
bins=$(cargo test -p vigil-lvs --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
[ -n "$bins" ] || { echo "run.sh: cargo built no test binaries" >&2; exit 1; }
i=0
for b in $bins; do
    i=$((i + 1))
    cp "$b" "$root/bin/test$i"
done

cp "$BUSYBOX" "$root/bin/busybox"
for applet in sh mount insmod poweroff cat ip; do ln -s busybox "$root/bin/$applet"; done
if command -v ipvsadm >/dev/null; then cp "$(command -v ipvsadm)" "$root/sbin/"; fi

# The dynamic libraries the binaries need, at the same paths.
for b in "$root"/bin/test* "$root"/sbin/*; do
    [ -e "$b" ] && ldd "$b" 2>/dev/null | grep -o '/[^ ]*' || true
done | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

# Modules: every IPVS scheduler and the SIP persistence engine, with their dependencies in load
# order. crc32c_generic is only a soft dependency of libcrc32c, so modules.dep omits it.
seen=" "
add_module() { # $1: path relative to $MODDIR
    case $seen in *" $1 "*) return ;; esac
    seen="$seen$1 "
    for dep in $(grep "^$1:" "$MODDIR/modules.dep" | cut -d: -f2); do add_module "$dep"; done
    name=$(basename "$1")
    case $name in
        *.xz) xz -dc "$MODDIR/$1" >"$root/mods/${name%.xz}"; name=${name%.xz} ;;
        *.zst) zstd -qdc "$MODDIR/$1" >"$root/mods/${name%.zst}"; name=${name%.zst} ;;
        *) cp "$MODDIR/$1" "$root/mods/$name" ;;
    esac
    echo "$name" >>"$root/mods/order"
}
crc=$(cd "$MODDIR" && find kernel/crypto -name 'crc32c_generic.ko*' | head -n 1)
[ -z "$crc" ] || add_module "$crc"
for m in $(cd "$MODDIR" && find kernel/net/netfilter/ipvs -name 'ip_vs_*.ko*' ! -name '*ftp*'); do
    add_module "$m"
done

cat >"$root/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod "/mods/$m" || echo "insmod $m failed"; done
cd /tmp
rc=0
for t in /bin/test*; do "$t" --test-threads=1 2>&1 || rc=1; done
echo "=== vigil-lvs vm rc=$rc"
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initrd.gz")

timeout 600 qemu-system-x86_64 -m 1024 -nographic -no-reboot -accel tcg \
    -kernel "$KERNEL" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" | tee "$work/console.log"
rc=$(sed -n 's/.*=== vigil-lvs vm rc=\([0-9]*\).*/\1/p' "$work/console.log")
exit "${rc:-1}"
