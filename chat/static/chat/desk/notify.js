// Sound, desktop notifications and the unread count in the tab title.
// Browsers allow sound and ask for notification permission only after a user gesture,
// hence the button that turns them on.

const BEEP_GAP_MS = 1500;

export class Notifier {
  constructor(button, strings) {
    this.button = button;
    this.strings = strings;
    this.audio = null;
    this.lastBeep = 0;
    this.baseTitle = document.title;
    button.addEventListener("click", () => this.enable());
  }

  async enable() {
    const AudioContext = window.AudioContext || window.webkitAudioContext;
    if (AudioContext && this.audio === null) this.audio = new AudioContext();
    if (this.audio) await this.audio.resume();
    let permission = "unsupported";
    if ("Notification" in window) permission = await Notification.requestPermission();
    this.button.setAttribute("aria-pressed", "true");
    this.button.textContent =
      permission === "granted" ? this.strings.notificationsOn : this.strings.notificationsBlocked;
  }

  // Sound always (once enabled); a desktop notification when the desk is not being looked at.
  alert({ title, body, tag }) {
    this.beep();
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (document.visibilityState === "visible" && document.hasFocus()) return;
    const notification = new Notification(title, { body, tag });
    notification.addEventListener("click", () => {
      window.focus();
      notification.close();
    });
  }

  beep() {
    const now = Date.now();
    if (this.audio === null || now - this.lastBeep < BEEP_GAP_MS) return;
    this.lastBeep = now;
    const oscillator = this.audio.createOscillator();
    const gain = this.audio.createGain();
    oscillator.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, this.audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, this.audio.currentTime + 0.35);
    oscillator.connect(gain).connect(this.audio.destination);
    oscillator.start();
    oscillator.stop(this.audio.currentTime + 0.35);
  }

  setUnread(count) {
    document.title = count > 0 ? `(${count}) ${this.baseTitle}` : this.baseTitle;
  }
}
