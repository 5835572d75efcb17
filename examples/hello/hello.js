// A Node.js function: the runtime calls main(context) and sends back what it returns.
module.exports.main = async (context) => {
  const who = context.request.params.who || "world";
  return `Hello, ${who}, from Node.js!\n`;
};
