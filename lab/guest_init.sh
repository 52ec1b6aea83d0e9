#!/bin/sh
# /init of the lab's KVM guest (busybox): write a pattern to /dev/vda, read it back
# with O_DIRECT, forever; one line per round on the serial console:
#   LABIO round=N errors=E boot=B last-failure=STEP@ROUND sectors=S
# errors counts every round whose write or read-back failed; the lab asserts it stays 0.  Each line
# ends with last-failure=STEP@ROUND (write, read or compare; "none"), so any console read tells which,
# and sectors, the disk's size as the guest's kernel sees it (grow-disk on Ganeti 3.1 tells QEMU, which
# tells the guest).
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in /lib/modules/*.ko; do insmod "$m" 2>/dev/null; done
n=0; while [ ! -b /dev/vda ] && [ $n -lt 100 ]; do n=$((n+1)); usleep 100000; done
boot=$(cat /proc/sys/kernel/random/boot_id)
[ -b /dev/vda ] || { while :; do echo "LABIO nodisk boot=$boot"; sleep 1; done; }
round=0; errors=0; failed=none
while :; do
  round=$((round+1)); off=$((round % 32))
  yes "lab round $round boot $boot" | head -c 1048576 > /tmp/pat
  if ! dd if=/tmp/pat of=/dev/vda bs=1048576 seek=$off count=1 oflag=direct conv=fsync,notrunc 2>/dev/null; then step=write
  elif ! dd if=/dev/vda of=/tmp/back bs=1048576 skip=$off count=1 iflag=direct 2>/dev/null; then step=read
  elif ! cmp -s /tmp/pat /tmp/back; then step=compare
  else step=; fi
  [ -z "$step" ] || { errors=$((errors+1)); failed="$step@$round"; }
  echo "LABIO round=$round errors=$errors boot=$boot last-failure=$failed sectors=$(cat /sys/block/vda/size)"
  usleep 300000
done
