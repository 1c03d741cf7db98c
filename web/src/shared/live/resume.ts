/**
 * What the live connection remembers to resume without gaps or doubles.
 *
 * Positions are opaque tokens: the client never compares them, it only remembers the last one
 * it saw. While a `resume` is in flight the token is frozen (live events may interleave with
 * the replay), and when its ack arrives the token becomes the last position received, which is
 * never past an event not yet received. One stored event can be delivered as several live events
 * with the same position (`appointment:updated` and `notification`), so duplicates are
 * recognised by event name and position together.
 */
export class ResumeState {
  private token: string | null = null;
  private lastSeen: string | null = null;
  private resuming = false;
  private readonly seen = new Set<string>();
  private readonly order: string[] = [];

  constructor(private readonly memory = 5000) {}

  /** The token to send as `resume {after}`; null before any event was seen. */
  get after(): string | null {
    return this.token;
  }

  /** True while a resume's replay is being received. */
  get isResuming(): boolean {
    return this.resuming;
  }

  /** Called for every received event; false when it was already delivered (drop it). */
  receive(event: string, position: string | undefined | null): boolean {
    if (!position) return true;
    const key = `${event}|${position}`;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    this.order.push(key);
    if (this.order.length > this.memory) this.seen.delete(this.order.shift() as string);
    this.lastSeen = position;
    if (!this.resuming) this.token = position;
    return true;
  }

  /** A resume was sent. */
  startResume() {
    this.resuming = true;
  }

  /** The resume was acknowledged: everything up to the last received position is here. */
  finishResume() {
    this.resuming = false;
    if (this.lastSeen) this.token = this.lastSeen;
  }

  /** The connection dropped before the resume's ack: the next resume starts from the old token. */
  abortResume() {
    this.resuming = false;
  }
}
