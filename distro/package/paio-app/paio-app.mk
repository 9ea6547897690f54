################################################################################
#
# paio-app
#
################################################################################

# Nothing is copied from the PAIO tree into the build directory: the app is
# installed straight from the tree's build outputs (out/build, out/models,
# node_modules) by image/app.ts, the list the offline assembler uses.
PAIO_APP_VERSION = local
PAIO_APP_SITE = $(PAIO_TOP)
PAIO_APP_SITE_METHOD = local
PAIO_APP_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = --exclude=*
PAIO_APP_LICENSE = MIT
PAIO_APP_BUN = $(PAIO_TOP)/node_modules/.bin/bun

# The architecture whose Bun and onnxruntime image/app.ts installs, in its
# own names: x86_64 (npm's bun-linux-x64-baseline, onnxruntime's linux/x64)
# or arm64 (bun-linux-aarch64, onnxruntime's linux/arm64).
PAIO_APP_ARCH = $(if $(BR2_aarch64),arm64,x86_64)
PAIO_APP_ARGS = --lib-dir usr/lib --arch $(PAIO_APP_ARCH)

define PAIO_APP_BUILD_CMDS
	@test -x $(PAIO_APP_BUN) || { \
		echo "paio-app: $(PAIO_APP_BUN) is missing: run 'make build models' in $(PAIO_TOP) first" >&2; exit 1; }
	cd $(PAIO_TOP) && $(PAIO_APP_BUN) image/app.ts list $(PAIO_APP_ARGS) > $(@D)/app-files.tsv
endef

# board/paio/post-build.sh checks afterwards that Bun and onnxruntime are
# built for the target's architecture.
define PAIO_APP_INSTALL_TARGET_CMDS
	cd $(PAIO_TOP) && $(PAIO_APP_BUN) image/app.ts install $(TARGET_DIR) $(PAIO_APP_ARGS)
endef

$(eval $(generic-package))
