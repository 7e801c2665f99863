import { describe, expect, it } from 'vitest';
import { distanceM, findMatch, normalise } from '../../../../shared/systems/kontantanalys/matching.js';

const OURS = { name: 'INGO Örebro, Adolfsbergsvägen', visitingAddress: 'Adolfsbergsvägen 4', postalCode: '702 27', x: 509886.4, y: 6568855.5 };

describe('provider matching before create', () => {
  it('normalises case, accents, punctuation and spacing', () => {
    expect(normalise('INGO  Örebro,Adolfsbergsvägen')).toBe(normalise('ingo orebro adolfsbergsvagen'));
  });
  it('measures SWEREF 99 TM distance in metres', () => {
    expect(distanceM({ x: 0, y: 0 }, { x: 3, y: 4 })).toBe(5);
  });
  it('matches the same name and address, even kilometres off (coordinates moved)', () => {
    const m = findMatch(OURS, [{ id: 7, attributes: { ...OURS, name: 'Ingo Orebro Adolfsbergsvagen', x: OURS.x + 5_000 } }], 25);
    expect(m).toMatchObject({ remoteId: 7, by: 'name-and-address', distanceM: 5_000 });
  });
  it('matches by coordinates within the distance, nearest first, and not beyond it', () => {
    const existing = [
      { id: 1, attributes: { name: 'Other', visitingAddress: 'X 1', postalCode: '70227', x: OURS.x + 20, y: OURS.y } },
      { id: 2, attributes: { name: 'Other 2', visitingAddress: 'X 2', postalCode: '70227', x: OURS.x + 3, y: OURS.y + 4 } },
    ];
    expect(findMatch(OURS, existing, 25)).toMatchObject({ remoteId: 2, by: 'coordinates', distanceM: 5 });
    expect(findMatch(OURS, existing, 4)).toBeUndefined();
  });
  it('prefers name and address over mere proximity, and needs the postal code to agree', () => {
    const existing = [
      { id: 1, attributes: { name: 'Neighbour', visitingAddress: 'X', x: OURS.x + 1, y: OURS.y } },
      { id: 2, attributes: { ...OURS, x: OURS.x + 400 } },
      { id: 3, attributes: { ...OURS, postalCode: '111 22', x: OURS.x + 900 } },
    ];
    expect(findMatch(OURS, existing, 25)?.remoteId).toBe(2);
    expect(findMatch(OURS, [existing[2]!], 25)).toBeUndefined();
  });
});
