/** At most `size` holders at once; the others wait in arrival order. */
export interface Gate {
  /** Resolves when the caller holds a place; call the function it returns (once) to give it back. */
  acquire(): Promise<() => void>;
}

export function createGate(size: number): Gate {
  if (!Number.isInteger(size) || size < 1) throw new Error(`a gate holds at least one, got ${size}`);
  let free = size;
  const waiting: Array<() => void> = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next(); else free++;
  };
  const holder = () => {
    let held = true;
    return () => { if (held) { held = false; release(); } };
  };
  return {
    async acquire() {
      if (free > 0) { free--; return holder(); }
      await new Promise<void>((resolve) => waiting.push(resolve));
      return holder();
    },
  };
}
