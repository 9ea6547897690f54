// First-boot settings given to `paio flash` (--hostname, --ssh-key, --wifi,
// ...): parsed by flash/cli.ts, read, checked and written by the provisioning
// library (lib/provision/flash.ts, docs/provisioning.md). The settings are
// loaded and checked before anything is written, so bad input writes
// nothing; they go into the target's boot partition after the image is
// written and verified.

import {
  bootPartitionOf, isEmptyBundle, loadFlashSettings, ProvisionError, writeBundleToTarget,
  type FlashSettingsInput, type ProvisionBundle,
} from "../lib/provision/flash.ts";

export type { FlashSettingsInput } from "../lib/provision/flash.ts";

/** Bad provisioning input: nothing is written. */
export class SettingsError extends Error {
  constructor(message: string, readonly remedy = "fix the option or file it names") {
    super(message);
  }
}

export function hasSettings(input: FlashSettingsInput): boolean {
  return Object.values(input).some((v) => v !== undefined && v !== false);
}

export interface LoadedSettings {
  bundle: ProvisionBundle;
  /** What the device will be given, in words (nothing secret). */
  summary: string[];
  /** Writes them into the target's boot partition; says what it wrote. */
  write(target: string): string[];
}

/**
 * Reads and checks the settings (the files the options name, the Wi-Fi
 * passphrase from stdin); undefined when none were given. With a raw image,
 * also checks it has the FAT boot partition they will go to. A problem is a
 * SettingsError naming the option or file.
 */
export function loadSettings(input: FlashSettingsInput, rawImage?: string): LoadedSettings | undefined {
  if (!hasSettings(input)) return undefined;
  let bundle: ProvisionBundle;
  try {
    bundle = loadFlashSettings(input);
  } catch (e) {
    if (e instanceof ProvisionError) throw new SettingsError(e.message);
    throw e;
  }
  if (isEmptyBundle(bundle)) return undefined;
  if (rawImage) {
    // An image without a FAT boot partition would be written and then fail here: say so first.
    try {
      bootPartitionOf(rawImage);
    } catch (e) {
      if (!(e instanceof ProvisionError)) throw e;
      throw new SettingsError(`first-boot settings need a FAT boot partition in the image: ${e.message}`, "flash a PAIO image, or leave the first-boot settings out");
    }
  }
  return {
    bundle,
    summary: bundle.summary,
    write: (target) => {
      try {
        return writeBundleToTarget(target, bundle);
      } catch (e) {
        if (e instanceof ProvisionError) throw new SettingsError(e.message, "the image is written and verified; flash again to retry the settings");
        throw e;
      }
    },
  };
}
