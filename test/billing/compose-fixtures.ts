/** Composer options for pure tests: an hourly matter with nothing else set (no quote, discount, fee reduction, origination or retainer). */
import type { ComposeOptions } from '../../src/modules/billing/domain/compose.ts';

export const HOURLY_OPTIONS: ComposeOptions = {
  arrangement: 'hourly',
  quote: { amountMinor: null, includes: 'fees', ifWipBelow: 'wip_only', ifWipAbove: 'wip_only' },
  fixedFee: { mode: 'every_cycle', schedule: [] },
  discount: { kind: 'none', percentBasisPoints: 0, amountMinor: 0 },
  feeReductions: { appearAsDiscount: false, hideLinePricing: false },
  feeAllocation: { allocateFees: 'pro_rata', feesTimekeeperId: null, allocateAdjustments: 'original_split', adjustmentsTimekeeperId: null, originationEnabled: false, originatorTimekeeperId: null, originationBasisPoints: 0 },
  retainerReplenishment: { enabled: false, minimumBalanceMinor: 0, triggerMinor: 0 },
  onlyExpenses: false,
};
