import type { Executor } from '../../shared/db.ts';
import * as bills from './bill-store.ts';
import * as store from './store.ts';
import type { MatterBillingFilters } from './store.ts';

/** Reads over billing's copy of matters (what the bill composer uses), bound to a database or transaction. */
export function createBillingReads(db: Executor) {
  return {
    getMatterCopy: (matterId: string) => store.getMatterCopy(db, matterId),
    unbilledWip: (matterId: string, upTo?: string) => store.unbilledWip(db, matterId, upTo),
    listMattersForBilling: (filters: MatterBillingFilters = {}) => store.listMattersForBilling(db, filters),
    wipOnBill: (billId: string) => store.wipOnBill(db, billId),
    getFirmSettings: () => store.getFirmSettings(db),
    getClientCopy: (id: string) => store.getClientCopy(db, id),
    getTimekeeperCopy: (id: string) => store.getTimekeeperCopy(db, id),
    listChargeTypes: (opts: { activeOnly?: boolean } = {}) => store.listChargeTypes(db, opts),
    openConflicts: (filters: { matterId?: string } = {}) => store.openConflicts(db, filters),
    billIdByNumber: (number: string) => bills.billIdByNumber(db, number),
  };
}

export type BillingReads = ReturnType<typeof createBillingReads>;
