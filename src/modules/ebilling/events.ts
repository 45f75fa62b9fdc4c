/**
 * Events the ebilling module publishes: type name to payload (plain data: ids and primitives).
 * Other modules may import these types (type-only) to subscribe.
 * Amounts are integer minor units of the bill's currency; times ISO-8601.
 */

/** A LEDES file was written and kept (ebilling_export) with the bills it holds. */
export interface LedesFileExported {
  exportId: string;
  format: 'LEDES1998B' | 'LEDES1998BI';
  fileName: string;
  sha256: string;
  invoiceCount: number;
  lineCount: number;
  bills: { billId: string; number: string; billVersion: number; totalMinor: number; currency: string }[];
  exportedAt: string;
}

/** The firm's LEDES identity and export choices changed: the settings as they now are. */
export interface LedesSettingsChanged {
  version: number;
  lawFirmId: string;
  lawFirmName: string;
  country: string;
  classificationStyle: 'words' | 'codes';
  noChargeLines: 'include' | 'omit';
  requireClientMatterId: boolean;
  updatedAt: string;
}

export type EbillingEvents = {
  'ebilling.file_exported': LedesFileExported;
  'ebilling.settings_changed': LedesSettingsChanged;
};
