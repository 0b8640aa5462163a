// The viewer page's chat: the room channel as the fan whose token the brand's app handed the
// page (#token=…), or as a guest who reads along. A room event that changes the room's state
// reloads the page into its next state at once (room.js polls too, as a fallback).
import { RoomChannel, fanTokenFromPage } from "/static/channel.js";
import { mountChat } from "/static/chat.js";
import { mountEconomy } from "/static/economy.js";

const root = document.getElementById("chat");
const page = document.querySelector("[data-room-id]");
if (root) {
  const token = fanTokenFromPage();
  const channel = new RoomChannel(root.dataset.channelUrl, { token: async () => token });
  mountChat(root, channel);
  const economy = document.getElementById("economy");
  if (economy) mountEconomy(economy, channel, { accountId: economy.dataset.accountId, fanToken: token });
  channel.addEventListener("room", ({ detail }) => {
    if (page && detail.data.state !== page.dataset.state) window.location.reload();
  });
  channel.start();
  window.laChannel = channel; // for support, and for the tests
  window.addEventListener("pagehide", () => channel.close());
}
