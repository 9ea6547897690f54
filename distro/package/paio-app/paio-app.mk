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

define PAIO_APP_BUILD_CMDS
	@test -x $(PAIO_APP_BUN) || { \
		echo "paio-app: $(PAIO_APP_BUN) is missing: run 'make build models' in $(PAIO_TOP) first" >&2; exit 1; }
	cd $(PAIO_TOP) && $(PAIO_APP_BUN) image/app.ts list > $(@D)/app-files.tsv
endef

define PAIO_APP_INSTALL_TARGET_CMDS
	cd $(PAIO_TOP) && $(PAIO_APP_BUN) image/app.ts install $(TARGET_DIR) --lib-dir usr/lib
endef

$(eval $(generic-package))
