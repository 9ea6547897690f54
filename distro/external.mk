################################################################################
#
# PAIO external tree
#
################################################################################

# The PAIO source tree this external tree belongs to (distro/ is one of its
# directories): PID 1's C source, the root overlay, the kernel patches and the
# app come from there, so the Buildroot image and the offline assembler's
# image are made from the same files.
PAIO_TOP := $(realpath $(BR2_EXTERNAL_PAIO_PATH)/..)

include $(sort $(wildcard $(BR2_EXTERNAL_PAIO_PATH)/package/*/*.mk))

# kconfig silently drops an option whose dependencies are missing. Every
# option of the kernel fragments must be in the final .config, or the build
# stops here and names the options that did not land.
define PAIO_CHECK_KERNEL_FRAGMENTS
	$(BR2_EXTERNAL_PAIO_PATH)/board/paio/check-kernel-config.sh $(LINUX_DIR)/.config \
		$(call qstrip,$(BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES))
endef
LINUX_POST_CONFIGURE_HOOKS += PAIO_CHECK_KERNEL_FRAGMENTS
