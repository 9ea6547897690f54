// First-boot settings given to `paio flash` (--hostname, --ssh-key, --wifi,
// ...): parsed here, checked and written by the provisioning library
// (lib/provision/flash.ts, docs/provisioning.md). The settings are loaded
// and checked before anything is written, so bad input writes nothing; they
// go into the target's boot partition after the image is written and verified.

/** The options as the provisioning library takes them. */
export interface FlashSettingsInput {
  hostname?: string;
  sshKeyFile?: string;
  wifiSsid?: string;
  wifiPskFile?: string;
  wifiPskStdin?: boolean;
  staticIp?: string;
  unitsDir?: string;
  policyFile?: string;
  timezone?: string;
}

/** What the library returns from loadFlashSettings: the files for the boot partition and, in words, what they set. */
export interface ProvisionBundle {
  summary?: string[];
}

interface ProvisionLibrary {
  loadFlashSettings(input: FlashSettingsInput): ProvisionBundle;
  writeBundleToTarget(target: string, bundle: ProvisionBundle): string[];
  isEmptyBundle(bundle: ProvisionBundle): boolean;
  /** Partition 1 of an image or drive, which must be FAT; throws when it is not. */
  bootPartitionOf?(target: string): unknown;
}

/** Bad provisioning input, or no provisioning library: nothing is written. */
export class SettingsError extends Error {
  constructor(message: string, readonly remedy = "fix the option or file it names") {
    super(message);
  }
}

export function hasSettings(input: FlashSettingsInput): boolean {
  return Object.values(input).some((v) => v !== undefined && v !== false);
}

// Loaded when settings are given, so flashing without them needs nothing more.
const LIBRARY = "../lib/provision/flash.ts";

async function library(): Promise<ProvisionLibrary> {
  try {
    return (await import(LIBRARY)) as ProvisionLibrary;
  } catch (e) {
    throw new SettingsError(`first-boot settings cannot be written: the provisioning library (lib/provision/flash.ts) cannot be loaded: ${(e as Error).message}`);
  }
}

export interface LoadedSettings {
  bundle: ProvisionBundle;
  /** What the device will be given, in words (nothing secret). */
  summary: string[];
  write(target: string): string[];
}

/**
 * Reads and checks the settings (files named by the options, the Wi-Fi
 * passphrase from stdin); undefined when none were given. A problem is a
 * SettingsError naming the option or file.
 */
export async function loadSettings(input: FlashSettingsInput, rawImage?: string): Promise<LoadedSettings | undefined> {
  if (!hasSettings(input)) return undefined;
  const lib = await library();
  if (rawImage && lib.bootPartitionOf) {
    // An image without a FAT boot partition would be written, then fail here: say so first.
    try {
      lib.bootPartitionOf(rawImage);
    } catch (e) {
      throw new SettingsError(`first-boot settings need a FAT boot partition in the image: ${(e as Error).message}`, "flash a PAIO image, or leave the first-boot settings out");
    }
  }
  let bundle: ProvisionBundle;
  try {
    bundle = lib.loadFlashSettings(input);
  } catch (e) {
    const err = e as Error;
    // ProvisionError names the option or file; anything else is passed on as it is.
    throw new SettingsError(err.name === "ProvisionError" || err.constructor?.name === "ProvisionError" ? err.message : `first-boot settings: ${err.message}`);
  }
  if (lib.isEmptyBundle(bundle)) return undefined;
  return { bundle, summary: bundle.summary ?? [], write: (target) => lib.writeBundleToTarget(target, bundle) };
}
