/**
 * The named limits of unit files and unit names, each documented in docs/units.md.
 *
 * Every limit bounds work done on untrusted input (a unit submitted over the API or the CLI): past
 * one, the parser raises a typed error (UNIT_INVALID or UNIT_NAME_INVALID) naming the limit; it never
 * grows a buffer, loops or recurses without bound. The defaults are far above any hand-written unit.
 */

export const unitLimits = {
  /** A whole unit file, in UTF-8 bytes. fleet units are a few hundred bytes; this is 64 KiB. */
  fileBytesMax: 64 * 1024,
  /** Physical lines in a file (comments and blank lines count). */
  fileLinesMax: 2_000,
  /** One physical line, in characters (UTF-16 code units), before any continuation is joined. */
  lineCharsMax: 4_096,
  /** One logical line: physical lines joined by trailing backslashes, in characters. */
  logicalLineCharsMax: 16_384,
  /** Physical lines one logical line may span (a deep continuation is refused, not followed). */
  continuationLinesMax: 64,
  /** Distinct sections in a file ([Unit], [Service], [X-Fleet], [X-Cairn], [Install], X-*). */
  sectionsMax: 16,
  /** Distinct keys in one section. */
  sectionKeysMax: 128,
  /** Values a list key holds after resets (Environment, ExecStartPre, Conflicts, After, MaxSkew...). */
  listValuesMax: 256,
  /** A section or key name, in characters (systemd names are short words). */
  nameCharsMax: 128,
  /** A unit name, in characters (systemd's UNIT_NAME_MAX). */
  unitNameCharsMax: 256,
  /** Names one brace expansion (`web@{1..6}.service`) may produce. */
  braceNamesMax: 1_000,
  /** Brace groups in one pattern (`{a,b}-{1..3}` has two). */
  braceGroupsMax: 4,
  /** Items in one `{a,b,...}` list. */
  braceListItemsMax: 1_000,
  /** A brace pattern, in characters, before expansion. */
  bracePatternCharsMax: 1_024,
  /** Levels in an [X-Cairn] Topology (region, zone, rack, machine...). */
  topologyLevelsMax: 8,
  /** The largest MaxSkew or Cap count. */
  spreadCountMax: 100_000,
  /** A machine metadata key or value in MachineMetadata, in UTF-8 bytes (as the agent's --metadata). */
  metadataKeyBytesMax: 128,
  metadataValueBytesMax: 512,
  /** A MachineID, in characters (a Cairn machine id is its agent's --name). */
  machineIdCharsMax: 256,
  /** Words in one command line (ExecStart, ExecStartPre, ExecStop). */
  commandWordsMax: 1_024,
  /** The longest time span (RestartSec, TimeoutStopSec, CheckInterval, UpdateTimeoutSec): 7 days. */
  timeSpanMsMax: 7 * 24 * 3600 * 1000,
  /** A ServiceName, in characters: one DNS label, so `<name>.service.cairn` resolves. */
  serviceNameCharsMax: 63,
  /** ServiceTags values (the agent's serviceTagsMax). */
  serviceTagsMax: 64,
  /** One ServiceTags value, in UTF-8 bytes (the agent's tagBytesMax). */
  serviceTagBytesMax: 256,
  /** A CheckHTTP URL or CheckTCP address, in characters. */
  checkTargetCharsMax: 2_048,
  /** The shortest CheckInterval (Consul raises shorter intervals to 1 s; Cairn refuses them). */
  checkIntervalMsMin: 1_000,
  /** The largest UpdateParallelism. */
  updateParallelismMax: 1_000,
} as const
