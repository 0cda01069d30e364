// One shared, frozen empty array for every empty list the core hands out
// (Ready fields, message entries): empty results allocate nothing, and a
// caller that tries to modify one gets a TypeError instead of corrupting others.
export const EMPTY: never[] = Object.freeze([]) as never[];
