#!/bin/busybox sh
# PAIO initramfs /init: load the drivers the root needs, find the read-only
# squashfs root, mount it and hand over to PID 1 (/sbin/init) with switch_root.
# Kernel command line: root=PARTLABEL=name|PARTUUID=sig-nn (MBR)|/dev/path (default
# PARTLABEL=paio-root-a), paio.init=PATH (default /sbin/init),
# paio.break=initramfs (open a shell here instead of booting). On a new system
# slot's trial boot (paio.trial=1, docs/updates.md) a root that cannot be
# booted reboots instead of opening a shell: the bootloader's tries run out
# and it goes back to the previous slot.

/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs -o mode=0755 devtmpfs /dev

say() { echo "paio-initramfs: $*" > /dev/console; }

rescue() {
  say "$*"
  if [ "$trial" = 1 ] && [ "$brk" != initramfs ]; then
    say "this is a new version's trial boot: rebooting, so that the previous version runs again"
    sleep 2
    reboot -f
  fi
  say "dropping to a shell; fix the problem, then 'exit' to retry the boot"
  setsid -c sh -l < /dev/console > /dev/console 2>&1
}

root=PARTLABEL=paio-root-a
init=/sbin/init
brk=""
trial=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    root=*) root=${arg#root=} ;;
    paio.init=*) init=${arg#paio.init=} ;;
    paio.break=*) brk=${arg#paio.break=} ;;
    paio.trial=*) trial=${arg#paio.trial=} ;;
  esac
done

while read -r ko; do
  [ -n "$ko" ] && insmod "/lib/modules/$ko" 2>/dev/null
done < /etc/modules-load.order

[ "$brk" = initramfs ] && rescue "stopped in the initramfs (paio.break=initramfs)"

# Prints /dev/NAME of the block device whose uevent has KEY=VALUE.
find_by_uevent() {
  for ue in /sys/class/block/*/uevent; do
    if grep -qx "$1=$2" "$ue" 2>/dev/null; then
      echo "/dev/$(sed -n 's/^DEVNAME=//p' "$ue")"
      return 0
    fi
  done
  return 1
}

# Prints /dev/NAME of the MBR partition whose PARTUUID is $1 ("50a10001-02": the
# disk signature, 4 bytes at offset 440, and the partition number). sysfs does
# not show it, so it is read from each partition's parent disk.
find_by_mbr_partuuid() {
  want=$(echo "$1" | tr A-F a-f)
  for p in /sys/class/block/*/partition; do
    [ -e "$p" ] || continue
    d=${p%/partition}
    disk=$(basename "$(dirname "$(readlink -f "$d")")")
    sig=$(od -An -tx4 -j440 -N4 "/dev/$disk" 2>/dev/null | tr -d ' ')
    if [ "$sig-$(printf %02d "$(cat "$p")")" = "$want" ]; then
      echo "/dev/${d##*/}"
      return 0
    fi
  done
  return 1
}

resolve_root() {
  case "$root" in
    PARTLABEL=*) find_by_uevent PARTNAME "${root#PARTLABEL=}" ;;
    PARTUUID=*) find_by_mbr_partuuid "${root#PARTUUID=}" ;;
    /dev/*) [ -b "$root" ] && echo "$root" ;;
    *) return 1 ;;
  esac
}

while :; do
  dev=""
  tries=0
  # Disks may appear a little after their driver loaded: wait up to 10 s.
  while [ $tries -lt 100 ]; do
    dev=$(resolve_root) && [ -b "$dev" ] && break
    dev=""
    tries=$((tries + 1))
    sleep 0.1
  done
  if [ -z "$dev" ]; then
    rescue "root device $root not found (block devices: $(ls /sys/class/block | tr '\n' ' '))"
    continue
  fi
  if ! mount -t squashfs -o ro "$dev" /newroot; then
    rescue "cannot mount $dev ($root) as squashfs"
    continue
  fi
  if [ ! -x "/newroot$init" ]; then
    umount /newroot
    rescue "$init is missing or not executable on the root file system $dev"
    continue
  fi
  break
done

umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot "$init"
