################################################################################
#
# paio-pid1
#
################################################################################

# Built from the PAIO tree itself; only the C sources are copied.
PAIO_PID1_VERSION = local
PAIO_PID1_SITE = $(PAIO_TOP)
PAIO_PID1_SITE_METHOD = local
PAIO_PID1_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--include=/init/ --include=/init/pid1.c \
	--include=/qemu/ --include=/qemu/guest/ --include=/qemu/guest/qemu-exec.c \
	--exclude=*
PAIO_PID1_LICENSE = MIT

# The same flags as the PAIO Makefile, with Buildroot's toolchain; static, so
# PID 1 runs even when a library on the root file system is damaged.
PAIO_PID1_CFLAGS = $(TARGET_CFLAGS) -static -Os -Wall -Wextra -Werror -std=gnu11

# busybox installs its own init applet as /sbin/init unless told otherwise;
# building after it lets ours replace that link.
PAIO_PID1_DEPENDENCIES = $(if $(BR2_PACKAGE_BUSYBOX),busybox)

ifeq ($(BR2_PACKAGE_PAIO_PID1_QEMU_EXEC),y)
define PAIO_PID1_BUILD_QEMU_EXEC
	$(TARGET_CC) $(PAIO_PID1_CFLAGS) $(TARGET_LDFLAGS) -o $(@D)/qemu-exec $(@D)/qemu/guest/qemu-exec.c
endef
define PAIO_PID1_INSTALL_QEMU_EXEC
	$(INSTALL) -D -m 0755 $(@D)/qemu-exec $(TARGET_DIR)/usr/libexec/paio/qemu-exec
endef
endif

define PAIO_PID1_BUILD_CMDS
	$(TARGET_CC) $(PAIO_PID1_CFLAGS) $(TARGET_LDFLAGS) -o $(@D)/pid1 $(@D)/init/pid1.c
	$(PAIO_PID1_BUILD_QEMU_EXEC)
endef

define PAIO_PID1_INSTALL_TARGET_CMDS
	rm -f $(TARGET_DIR)/sbin/init
	$(INSTALL) -D -m 0755 $(@D)/pid1 $(TARGET_DIR)/sbin/init
	$(PAIO_PID1_INSTALL_QEMU_EXEC)
endef

$(eval $(generic-package))
